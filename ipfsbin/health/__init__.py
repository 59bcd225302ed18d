"""A node's health and the network's coverage: ``doctor``'s findings and ``weather``'s figures.

Used by the command line (``ipfsbin doctor``, ``ipfsbin weather``) and by
the page ``ipfsbin serve`` renders at ``/``.
"""

from ipfsbin.health.doctor import DoctorInputs, run_doctor
from ipfsbin.health.findings import Finding, Report, Status
from ipfsbin.health.weather import (
    PackageWeather,
    Wanted,
    Weather,
    check_atoms,
    count_providers,
    select_wanted,
    weigh,
)

__all__ = [
    "DoctorInputs",
    "Finding",
    "PackageWeather",
    "Report",
    "Status",
    "Wanted",
    "Weather",
    "check_atoms",
    "count_providers",
    "run_doctor",
    "select_wanted",
    "weigh",
]
