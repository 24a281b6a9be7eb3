-- A trashed version keeps its pin (issue 16: the trash and pins, written apart):
-- `trash_versions` holds the columns of `versions` one for one, so that a trash moves a
-- version's row and a restore moves it back whole, its pin label with it.
ALTER TABLE trash_versions ADD COLUMN pinned text CHECK (pinned <> '');
