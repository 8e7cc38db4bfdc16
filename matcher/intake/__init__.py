"""The intake layer: reading what users hand in (JSON instance files read strictly in
``json_file``, spreadsheets and CSV exports, the blank template) into a validated
:class:`matcher.contract.instance.Instance`, and warning about near-miss spellings
(``spelling``). It imports the contract layer, errors, text and file safety, never the engine."""
