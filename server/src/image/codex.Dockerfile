# Codex CLI on Handoff's Debian base. The CLI was resolved on the host by npm into
# agent/ (the build itself has no network); its native static binary is linked onto
# PATH (it finds its bundled tools next to itself). The image runs as any uid: HOME
# and the workspace are writable by all.
ARG BASE
FROM ${BASE}
COPY agent/ /opt/agent/
RUN test -x /opt/agent/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex \
 && ln -s /opt/agent/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex /usr/local/bin/codex \
 && mkdir -p /home/agent /workspace \
 && chmod 1777 /home/agent /workspace \
 && git config --system --add safe.directory '*'
ENV HOME=/home/agent DISABLE_AUTOUPDATER=1
WORKDIR /workspace
