import gc
import os

import django

from promotions_site.handlers import ApiSplitWSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "promotions_site.settings")
django.setup(set_prefix=False)  # what get_wsgi_application() does before it builds its handler
# The API's paths through its lean middleware stack, the rest through the whole one (handlers.py).
application = ApiSplitWSGIHandler()

# Everything loaded so far (Django, the apps, their modules: about 130,000 objects) lives as long as
# the process: moved out of the garbage collector's generations, so a full collection no longer walks
# it (measured: 165 to 210 ms of pause per full collection before, 5 to 18 ms after, in the middle of
# a request that then answers late). Under gunicorn's --preload the workers inherit it from the master
# (and share its memory pages longer, as the collector no longer writes to them).
gc.freeze()
# A request makes thousands of short-lived objects that reference counting frees; the youngest
# generation is collected every 50,000 new objects rather than every 700, so a request pays for a
# collection now and then rather than several each time (measured: 3% of the instructions of an
# evaluation of a 50-line cart). Cyclic garbage waits a little longer to be freed.
gc.set_threshold(50_000, 20, 20)
