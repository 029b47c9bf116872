/** What production refuses to start without (the seed README): every test that checks the refusal names these. */
export const REQUIRED_IN_PRODUCTION = [
  'SECRET_KEY',
  'ALLOWED_HOSTS',
  'DATABASE_URL',
  'REDIS_URL',
  'CELERY_BROKER_URL',
  'CELERY_RESULT_BACKEND',
  'SERVICE_AUTH_SECRET_DJANGO_BACKEND',
  'SERVICE_AUTH_SECRET_API_GATEWAY',
  'SERVICE_AUTH_SECRET_CELERY_WORKER',
]
