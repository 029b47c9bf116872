CREATE TABLE "analytics_daily" (
	"day" date PRIMARY KEY NOT NULL,
	"sessions" integer NOT NULL,
	"orders" integer NOT NULL,
	"revenue" bigint NOT NULL,
	"units_sold" integer NOT NULL,
	"refunds" bigint NOT NULL,
	"rolled_up_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "analytics_product_daily" (
	"day" date NOT NULL,
	"product_id" uuid NOT NULL,
	"views" integer NOT NULL,
	"cart_adds" integer NOT NULL,
	"units_sold" integer NOT NULL,
	"revenue" bigint NOT NULL,
	"refunds" bigint NOT NULL,
	CONSTRAINT "analytics_product_daily_day_product_id_pk" PRIMARY KEY("day","product_id")
);
--> statement-breakpoint
CREATE TABLE "analytics_zero_result_searches" (
	"day" date NOT NULL,
	"query" text NOT NULL,
	"searches" integer NOT NULL,
	CONSTRAINT "analytics_zero_result_searches_day_query_pk" PRIMARY KEY("day","query")
);
--> statement-breakpoint
CREATE INDEX "order_events_paid_idx" ON "order_events" USING btree ("created_at") WHERE "order_events"."to_status" = 'paid';--> statement-breakpoint
CREATE INDEX "payment_refunds_succeeded_idx" ON "payment_refunds" USING btree ("updated_at") WHERE "payment_refunds"."status" = 'succeeded';