"""The Celery adapter: the only package that imports Celery or kombu."""
