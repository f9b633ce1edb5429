"""Writes of jobs, one module per phase, each importing only downward (Django-Styleguide's "Modules"):

- ``job_create``: validate a request, record the job and queue its first steps on commit; ``job_rerun``;
- ``job_cancel``, ``job_delete``: a user ends or removes a job;
- ``job_state``: what the steps report while they run (stage, deadline, stop check) and ``job_fail``, the one place a
  failure is recorded;
- ``results_save``: what every step stores (the trained model's metrics and file, plots, explanations).

Import from the module that holds a function (``from explanations.services.job_create import job_create``): this
package imports none of them, so that the modules the steps call (``job_state``, ``results_save``) sit below the
pipeline and the steps without a circle.
"""
