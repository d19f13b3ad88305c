"""The root of every exception pvlog raises on purpose.

It lives in drivers/, the bottom of the dependency order (daemon and simulators
import drivers, never the reverse), so the port layer's errors share it. Catch
``PvlogError`` to catch what pvlog means; anything else is a bug or the platform::

    PvlogError
    ├── PortError                 drivers.port: a port cannot be opened, or was lost
    │   └── WriteRefused          a write the driver did not declare (never sent)
    ├── UnknownDriver             drivers.registry: no driver of that name
    ├── ConfigError               daemon.config: one line naming the key (exit code 2)
    ├── CommandError              daemon.sessions.control: a session command refused
    │                             (also a ValueError)
    ├── TagError                  daemon.sessions.tag_rules: a session tag a lot report
    │                             could not use (also a ValueError)
    ├── LotRefused                daemon.reports.lot_plan: a lot that cannot be judged as
    │                             recorded (exit code 2; also a ValueError)
    ├── Unverified                daemon.tools.lot: files not as their manifests say (exit 1)
    ├── KeyProblem                daemon.audit.keys: a key that cannot be used (exit code 2)
    ├── DuplicateKey              daemon.audit.keys: signed JSON naming a key twice (also a
    │                             ValueError)
    ├── SignatureFileProblem      daemon.tools.signature_file: a REPORT.sig that cannot be
    │                             read or written (exit 1)
    ├── PdfProblem                daemon.reports.signature_page: a PDF that cannot be read,
    │                             or a name its page cannot show
    ├── Refused                   daemon.tools.signing: a signature not made (exit 1)
    ├── InUse                     daemon.service.instance_lock: an outbox another pvlog
    │                             holds (exit code 2)
    └── InfluxUnavailable         daemon.influx.v1: no answer from InfluxDB (retried)
"""

from __future__ import annotations


class PvlogError(Exception):
    """Something pvlog detected and says in words; never a crash."""
