"""The trusted side of the Actions sandbox: a zygote that forks one fresh child per execution.

This package runs *inside* bubblewrap as ``python -I -S -B /sandbox/runtime/sandboxed FD``
(``__main__``), with nothing but the standard library, ``pyseccomp`` and, for actions that have
them, the version's dependencies. It must not import ``idp`` nor anything outside itself
(tests/unit/test_sandboxed_imports.py). The zygote never runs operator code; each child does, once,
and then exits, so no memory survives from one execution to the next.

Modules: ``zygote`` (the zygote, its spare, forking a child), ``confine`` (rlimits, seccomp),
``child`` (one execution, and its rehearsal in the zygote on a job of the runtime's own before
the first fork), ``api`` (the ``api`` an action gets) and ``values`` (the read-only
``event`` and the JSON that api methods take).

Zygote protocol (control socket on fd 3, SOCK_SEQPACKET, one message per datagram):
  host -> zygote  ``{"run": id, "timeout": s, "cpu": s, "cpu_ceiling": s, "memory": bytes,
                  "nice": n}`` with two file descriptors (SCM_RIGHTS): the job pipe's read end
                  and the result pipe's write end;
  host -> zygote  ``{"kill": id}``;
  zygote exits when the control socket reaches end-of-file (the host went away).
The zygote keeps one *spare*: a child forked and confined ahead of time (with the last
order's limits) that waits, holding nothing, for the next run order (passed on over a socket
of its own with the two pipes). Forking, the costliest step on a small VM, is then off the
execution's path; each child still runs one execution only and starts from the zygote's
memory, never from another execution's.
Child protocol (JSON lines; the child reads fd 0 and writes fd 1):
  in   one job line ``{"trigger", "code" or "bytecode", "event", "secrets", "api", ...}``
       (``bytecode``: the action compiled by the host, marshal data in base64);
  out  zero or more ``{"rpc": ...}`` lines, each answered by one line on fd 0;
  out  one final ``{"done": true, "commands": [...], "logs": "...", "error": ...}`` line.
Nothing the child writes is trusted by the host (SECURITY.md §4.4): the host validates every line.
"""
