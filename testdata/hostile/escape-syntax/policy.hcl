# A syntax error whose line holds terminal escapes (7-bit, and a raw 8-bit CSI).
# Want: a positioned syntax error, the escapes shown escaped.
policy "hostile" {}
oops = [2J]0;pwned "[31m ›[2J
