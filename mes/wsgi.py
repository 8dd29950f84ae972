import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mes.settings")
application = get_wsgi_application()
# What Django loaded at start lives as long as the process: frozen, the garbage collector stops
# walking it on every full collection. A big reply (a chart of 5,000 points, a batch page) makes
# tens of thousands of objects that live until it is sent, and at the default threshold of 700
# allocations the collector walks them again and again while they are built; a request's
# garbage is rarely cyclic, so collecting every 10,000 allocations costs little memory.
gc.freeze()
gc.set_threshold(10_000, 10, 10)
