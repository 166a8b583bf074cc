"""Partial information decomposition (PID) estimators in pure JAX.

* `ssljax.pid.discrete`: entropies / MIs of a joint pmf ``p[x1, x2, y]`` and the
  Williams–Beer I_min, MMI and BROJA PIDs (bits by default).
* `ssljax.pid.broja`: the BROJA convex-program solvers (dual interior point,
  alternating divergence minimisation), with a certificate (nats).
* `ssljax.pid.gaussian`: Gaussian entropy / MI from log-determinants and the
  closed-form Gaussian MMI PID (nats by default).
* `ssljax.pid.kmeans`: k-means++ / Lloyd, ``axis_name``-aware.
* `ssljax.pid.batch`: batch estimators for embeddings (Gaussian after projection;
  discrete after k-means).

Every estimator returns `PIDAtoms` (redundancy, unique1, unique2, synergy) that
satisfies the bookkeeping identities of ``ssljax.pid.atoms`` by construction.
Background, choices and references: ``docs/pid.md``.
"""

from ssljax.pid.atoms import PIDAtoms, atoms_from_redundancy
from ssljax.pid.batch import (DiscreteBatchPID, GaussianPIDStats, discrete_batch_pid,
                              empirical_joint_pmf, gaussian_batch_pid, gaussian_pid_from_stats,
                              gaussian_pid_stats, plugin_mi_bias, view_projection)
from ssljax.pid.broja import BrojaSolution, broja_coupling
from ssljax.pid.discrete import (entropy, mutual_information, pid_broja, pid_imin, pid_mmi,
                                 pid_mutual_informations, specific_information)
from ssljax.pid.gaussian import gaussian_entropy, gaussian_mi, gaussian_pid_mmi, logdet_psd
from ssljax.pid.kmeans import (KMeansResult, kmeans, kmeans_assign, kmeans_inertia,
                               kmeans_plusplus_init)

__all__ = [
    "PIDAtoms", "atoms_from_redundancy",
    "entropy", "mutual_information", "pid_mutual_informations", "specific_information",
    "pid_imin", "pid_mmi", "pid_broja", "broja_coupling", "BrojaSolution",
    "logdet_psd", "gaussian_entropy", "gaussian_mi", "gaussian_pid_mmi",
    "KMeansResult", "kmeans", "kmeans_plusplus_init", "kmeans_assign", "kmeans_inertia",
    "view_projection", "GaussianPIDStats", "gaussian_pid_stats", "gaussian_pid_from_stats",
    "gaussian_batch_pid", "empirical_joint_pmf", "discrete_batch_pid", "DiscreteBatchPID",
    "plugin_mi_bias",
]
