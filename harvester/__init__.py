"""The harvester: sources, harvest runs over sickle, checkpoints, retries, leases, and the
`oai source` / `oai harvest` commands.

It writes only through oai.store and reads formats through oai.formats; it never imports the web layer.
"""
