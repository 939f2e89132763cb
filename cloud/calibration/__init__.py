"""Sensor calibration: records per sensor, status (valid, due soon, overdue, failed), alarms.

A calibration record says when a sensor was checked against a reference, the certificate, the
offset found, the result and when the next check is due (``core.Calibration``). The pure core
(``core.py``) derives a sensor's status at a moment and the periods its readings were taken
while the calibration was overdue or had failed (``flagged_spans``); the store (``store.py``)
reads and appends records (audited); ``due.py`` is the job that raises ``calibration_due``
before a calibration falls due and ``calibration_overdue`` once it has.

A sensor with no record has status ``unknown``: its readings are not flagged (a site that does
not record calibrations here would see everything flagged), but the calibration report lists it.

Exceptions::

    CalibrationError            any refusal of this room
    └── UnknownSensorError      no such sensor
"""

from __future__ import annotations


class CalibrationError(Exception):
    """A calibration record refused."""


class UnknownSensorError(CalibrationError):
    """No sensor with that id."""
