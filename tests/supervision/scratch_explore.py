from sqlalchemy import text
from gis.database import make_engine
import time

def test_explore(db):
    eng = make_engine(db)
    with eng.connect() as c:
        for q in [
            "select count(*) from address where level='door'",
            "select count(*) from grid", "select count(*) from worker", "select count(*) from entity",
            "select count(*) from task", "select count(*) from clue", "select count(*) from registration_event",
            "select grid_code, count(*), min(capacity), max(capacity) from worker group by 1 order by 2 desc limit 5",
            "select id, full_text, grid_code, town_code from address where level='door' order by id limit 5",
            "select code, name from town order by code limit 5",
            "select status, count(*) from entity group by 1",
            "select min(registered_on), max(registered_on), count(annual_report_filed_on) from entity",
            "select industry, count(*) from clue group by 1 order by 2 desc limit 5",
            "select source, status, count(*) from clue group by 1,2",
        ]:
            print(q, c.execute(text(q)).all())
        from address_library.service import Geocoder
        t = time.perf_counter(); g = Geocoder.load(c); print("load", time.perf_counter() - t)
        for a in ["火星路1号", "东城街道", "东莞市"]:
            print(a, g.geocode(a))
