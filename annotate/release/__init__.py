"""Gold releases: select gold from labels (pure), write the files, publish a version, diff two."""
