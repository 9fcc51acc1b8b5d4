"""NetBox's WSGI application with its static files served by WhiteNoise.

NetBox leaves static files to a front web server; the lab has none, and people browse the lab
NetBox's UI, so gunicorn serves them itself.
"""

from django.conf import settings
from netbox.wsgi import application as netbox_application
from whitenoise import WhiteNoise

application = WhiteNoise(netbox_application, root=settings.STATIC_ROOT, prefix="static/", max_age=3600)
