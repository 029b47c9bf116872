CREATE TABLE "periodic_tasks" (
	"name" text PRIMARY KEY NOT NULL,
	"task" text NOT NULL,
	"payload" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"cron" text,
	"every_seconds" integer,
	"enabled" boolean DEFAULT true NOT NULL,
	"last_run_at" timestamp with time zone,
	"next_run_at" timestamp with time zone NOT NULL,
	"total_run_count" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "periodic_tasks_one_schedule" CHECK (("periodic_tasks"."cron" IS NULL) <> ("periodic_tasks"."every_seconds" IS NULL)),
	CONSTRAINT "periodic_tasks_every_seconds_positive" CHECK ("periodic_tasks"."every_seconds" > 0)
);
