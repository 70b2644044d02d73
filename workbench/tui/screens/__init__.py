"""One module per screen: runs (home), monitor (one run), editor (+ editor_io), modals and pick (dialogs)."""
