"""Parse FortiOS CLI text with pyFG's FortiConfig (Debian python3-pyfg) and
print what it understood as JSON: {"blocks": {PATH: {ENTRY: {PARAM: VALUE}}},
"ignored": [LINE, ...]} for the lines its parser does not take."""
import json
import re
import sys

from pyFG.forticonfig import FortiConfig

text = sys.stdin.read()
root = FortiConfig(config_type="root")
root.parse_config_output(text)

pattern = re.compile('^(config |edit |set |end$|next$)(.*)')
ignored = [line.strip() for line in text.splitlines() if line.strip() and not pattern.match(line.strip())]

blocks = {}
for path in root.get_block_names():
    block = root[path]
    entries = {}
    for name in block.get_block_names():
        entry = block[name]
        entries[name] = {p: entry.get_param(p) for p in entry.get_parameter_names()}
    blocks[path] = entries
json.dump({"blocks": blocks, "ignored": ignored}, sys.stdout, sort_keys=True)
