"""OAI-PMH 2.0 rules with no web framework in them: arguments, errors, dates, tokens, verbs, XML."""
