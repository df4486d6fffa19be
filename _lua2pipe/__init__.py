"""lua2pipe's operator tools, and what the coprocess imports only after its start.

``lua2pipe.py`` is the coprocess pdns starts (the Lua state, the serving loop, CMD). This
package holds the rest, each module imported only when it is needed, so none of it costs
the coprocess's startup:

- :mod:`_lua2pipe.shell`: the ``check``, ``query``, ``axfr`` and ``cmd`` subcommands;
- :mod:`_lua2pipe.transcript`: the transcript format (one protocol session as text);
- :mod:`_lua2pipe.replay`: ``lua2pipe replay``, transcripts run and diffed;
- :mod:`_lua2pipe.record`: ``--record``, the served session written as a transcript;
- :mod:`_lua2pipe.keys`: DNSSEC key tags for CMD ``keys``;
- :mod:`_lua2pipe.loop_memory`: the memory LuaJIT's serving loop shares with Python's threads,
  the one module here that pdns runs (imported once HELO is answered);
- :mod:`_lua2pipe.metrics`: ``--metrics-dir`` (each coprocess's numbers as a Prometheus text
  file, written by its watchdog thread) and ``lua2pipe metrics``, which sums them.

``lua/`` (a link to the checkout's top-level ``lua/`` directory, installed as package data)
is lua2pipe's Lua half, which ``lua2pipe.py`` loads. The modules here import the core as
``lua2pipe``; the core makes sure that is the module running, never a second copy.
"""
