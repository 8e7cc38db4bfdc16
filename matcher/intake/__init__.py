"""The intake layer: reading what users hand in (JSON instance files, spreadsheets and CSV
exports, the blank template) into a validated :class:`matcher.contract.instance.Instance`.
It imports the contract layer, errors, text and file safety, never the engine."""
