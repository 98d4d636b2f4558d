"""mtserve: many BERT tasks served from one shared trunk on Triton and KServe.

The code lives in the repository's top-level folders, one per stage of the pipeline
(`training/`, `serving/`, `loadtest/`), and installs as sub-packages of this one
(`mtserve.training`, `mtserve.serving`, `mtserve.loadtest`: pyproject.toml's `package-dir`).
Why: bare top-level names such as `training` or `serving` collide with other installed
packages, while the folders themselves are the layout users and the design refer to.
An installed `mtserve` (`pip install -e .` or a wheel) is therefore required to import it;
the python-backend models under `serving/models/` import nothing from it (they run in
NVIDIA's stock Triton image).
"""
