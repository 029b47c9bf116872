CREATE TABLE "analytics_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"type" text NOT NULL,
	"product_id" uuid,
	"query" text,
	"result_count" integer,
	"session_id" text,
	"user_id" uuid,
	"order_id" uuid,
	"amount" integer,
	"source_event_id" uuid,
	"occurred_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "analytics_events_occurred_idx" ON "analytics_events" USING btree ("occurred_at");--> statement-breakpoint
CREATE INDEX "analytics_events_session_idx" ON "analytics_events" USING btree ("session_id") WHERE "analytics_events"."session_id" IS NOT NULL AND "analytics_events"."user_id" IS NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "analytics_events_source_idx" ON "analytics_events" USING btree ("source_event_id");