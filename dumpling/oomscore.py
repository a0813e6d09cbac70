"""oom-score-adj (Redis's setOOMScoreAdj): the kernel's OOM-killer score of this process, from
``oom-score-adj-values`` (master, replica, background child) and the mode (``yes``/``relative``:
added to the score the process had before dumpling first changed it; ``absolute``: as given;
``no``: the score before restored).  Linux only (``/proc/self/oom_score_adj``).
"""

from __future__ import annotations

from collections.abc import Callable

OOM_FILE = "/proc/self/oom_score_adj"
CLASSES = ("master", "replica", "bgchild")


class OomScore:
    def __init__(self, path: str = OOM_FILE) -> None:
        self.path = path
        self.adjusted = False  # dumpling changed the score (and knows the one to restore)
        self.base = 0

    def apply(self, mode: str, values: str, process_class: str, log: Callable[[str], None]) -> bool:
        """Set the score for ``process_class``; False (logged) if the file cannot be read or written."""
        if mode != "no":
            if not self.adjusted:
                try:
                    with open(self.path) as f:
                        self.base = int(f.read().strip() or 0)
                except (OSError, ValueError) as e:
                    log(f"Unable to read oom_score_adj: {getattr(e, 'strerror', None) or e}")
                    return False
                self.adjusted = True
            value = int(values.split()[CLASSES.index(process_class)])
            if mode in ("yes", "relative"):
                value += self.base
            value = min(max(value, -1000), 1000)
        elif self.adjusted:
            self.adjusted = False
            value = self.base
        else:
            return True
        try:
            with open(self.path, "w") as f:
                f.write(f"{value}\n")
        except OSError as e:
            log(f"Unable to write oom_score_adj: {e.strerror}")
            return False
        return True
