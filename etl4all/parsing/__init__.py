"""Reading coordinate files: lines to records (:mod:`.records`), records to frames (:mod:`.parse`),
files to parsed pieces (:mod:`.reading`)."""
