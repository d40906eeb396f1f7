"""tests.support: named lookups over the test city, the one set of account helpers, and the app under test."""
