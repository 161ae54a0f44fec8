"""Unpacks every wheel in a folder into one library folder, as pip would for pure and
platform wheels (their `.data/purelib` and `.data/platlib` go to the same place).
Used inside a network-less image build, where neither pip nor venv exists."""
import os
import shutil
import sys
import zipfile

wheels, target = sys.argv[1], sys.argv[2]
os.makedirs(target, exist_ok=True)
count = 0
for name in sorted(os.listdir(wheels)):
    if not name.endswith(".whl"):
        continue
    with zipfile.ZipFile(os.path.join(wheels, name)) as wheel:
        wheel.extractall(target)
    count += 1
for entry in os.listdir(target):
    if not entry.endswith(".data"):
        continue
    for kind in ("purelib", "platlib"):
        inner = os.path.join(target, entry, kind)
        if os.path.isdir(inner):
            for item in os.listdir(inner):
                dest = os.path.join(target, item)
                if os.path.exists(dest):
                    continue
                shutil.move(os.path.join(inner, item), dest)
    shutil.rmtree(os.path.join(target, entry))
if count == 0:
    sys.exit("no wheels in " + wheels)
print(f"unpacked {count} wheels into {target}")
