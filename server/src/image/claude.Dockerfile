# Claude Code on Handoff's Debian base. The CLI was resolved on the host by npm into
# agent/ (the build itself has no network); its native linux-x64 binary is linked onto
# PATH. The image runs as any uid: HOME and the workspace are writable by all.
ARG BASE
FROM ${BASE}
COPY agent/ /opt/agent/
RUN test -x /opt/agent/node_modules/@anthropic-ai/claude-code-linux-x64/claude \
 && ln -s /opt/agent/node_modules/@anthropic-ai/claude-code-linux-x64/claude /usr/local/bin/claude \
 && mkdir -p /home/agent /workspace \
 && chmod 1777 /home/agent /workspace \
 && git config --system --add safe.directory '*'
ENV HOME=/home/agent DISABLE_AUTOUPDATER=1
WORKDIR /workspace
