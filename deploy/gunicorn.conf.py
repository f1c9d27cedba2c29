"""Gunicorn settings for the OAI-PMH web nodes: `gunicorn -c deploy/gunicorn.conf.py 'oai:create_app()'`."""

import multiprocessing
import os

bind = os.environ.get("OAI_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("OAI_WORKERS", multiprocessing.cpu_count() * 2))
worker_class = "gthread"
threads = int(os.environ.get("OAI_THREADS", 4))
timeout = 120  # a page of 500 JATS records on a slow disk still fits
graceful_timeout = 30
keepalive = 5
max_requests = 10000  # recycle workers now and then
max_requests_jitter = 1000
accesslog = "-"
errorlog = "-"
# The units run under ProtectSystem=strict: nothing is writable but /srv/oai/data, a private /tmp and /dev/shm.
worker_tmp_dir = "/dev/shm"  # the workers' heartbeat files (a tmpfs: no disk writes either)
control_socket_disable = True  # newer gunicorn (27) opens a control socket in $HOME, read-only there
