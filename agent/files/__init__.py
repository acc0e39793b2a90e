"""Files on disk: the inbox's folders, moving without loss, names, locks and folder identity."""
