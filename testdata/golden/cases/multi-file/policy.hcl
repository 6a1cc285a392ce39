# A policy split across files, with provider ranges read from a ranges file.
policy "multi" {}
