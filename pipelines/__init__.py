"""Named recipes (``*.toml``): the paper's training setups and the quickstart's.

Load one with ``eventvision.train.load_pipeline(name)`` or ``--pipeline NAME`` on the CLI.
"""
