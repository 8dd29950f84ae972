import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mes.settings")
application = get_wsgi_application()
# What Django loaded at start lives as long as the process: frozen, the garbage collector stops
# walking it on every full collection, which a big reply (a chart of 20,000 points) triggers
# several times over.
gc.freeze()
