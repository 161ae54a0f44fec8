# aider (pip package aider-chat) on Handoff's Debian base. Its wheels were resolved on
# the host by pip into agent/ (the build itself has no network) and are unpacked here
# into /opt/agent/lib by a small script, without pip or a virtual environment (the
# base has neither); a launcher puts `aider` on PATH.
ARG BASE
FROM ${BASE}
COPY agent/ /opt/agent-wheels/
RUN python3 /opt/agent-wheels/unpack.py /opt/agent-wheels /opt/agent/lib \
 && rm -rf /opt/agent-wheels \
 && printf '#!/usr/bin/python3\nimport sys\nsys.path.insert(0, "/opt/agent/lib")\nfrom aider.main import main\nsys.exit(main())\n' > /usr/local/bin/aider \
 && chmod 755 /usr/local/bin/aider \
 && mkdir -p /home/agent /workspace \
 && chmod 1777 /home/agent /workspace \
 && git config --system --add safe.directory '*'
ENV HOME=/home/agent
WORKDIR /workspace
