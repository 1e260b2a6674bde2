"""Many runs and what they say together: sweeps over a grid and seeds, a job engine, summaries, comparisons.

* :mod:`~sequoia.experiments.spec`: what a sweep runs (a grid of options times seeds);
* :mod:`~sequoia.experiments.jobs`: one run as a job a worker process executes;
* :mod:`~sequoia.experiments.launchers`: where jobs execute (local processes, submitit);
* :mod:`~sequoia.experiments.sweep`: the sweep directory, its index and ``--resume``;
* :mod:`~sequoia.experiments.summary`: runs grouped into configurations, statistics over seeds, paired tests;
* :mod:`~sequoia.experiments.report`: tables (Markdown, CSV, JSON) and plots;
* :mod:`~sequoia.experiments.commands`: ``sequoia sweep`` and ``sequoia compare``.

See ``docs/experiments.md``.
"""
