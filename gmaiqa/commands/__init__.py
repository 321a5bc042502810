"""Every ``gmaiqa`` command: a thin entry ``<name>.run(cfg) -> exit status`` over the library module
that does the work (``gmaiqa.train``, ``gmaiqa.evaluate``, ...); ``gmaiqa.cli`` composes the config with
Hydra (``conf/<name>.yaml``) and maps user errors to exit status 2."""
