-- The PostgreSQL tables as the version before school-scoped keys made them (pg_dump --schema-only of the
-- ledger, invitations, reminders and ingest tables), for tests/test_upgrade_to_school_scoped_keys.py.
CREATE TABLE deliveries (
    notification_id character varying(26) NOT NULL,
    source_event_id character varying(200) NOT NULL,
    source_event_type character varying(200) NOT NULL,
    school_id character varying(200) NOT NULL,
    guardian_id character varying(200) NOT NULL,
    channel character varying(20) NOT NULL,
    template character varying(100) NOT NULL,
    language character varying(35),
    status character varying(20) NOT NULL,
    reason character varying(200),
    detail character varying(500),
    provider character varying(50),
    provider_message_id character varying(200),
    attempts integer DEFAULT 0 NOT NULL,
    segments integer,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);
CREATE TABLE delivery_retries (
    notification_id character varying(26) NOT NULL,
    due_at timestamp with time zone NOT NULL,
    attempt integer NOT NULL,
    job text NOT NULL,
    claimed_by character varying(200),
    claimed_until timestamp with time zone
);
CREATE TABLE delivery_status_history (
    id bigint NOT NULL,
    notification_id character varying(26) NOT NULL,
    status character varying(20) NOT NULL,
    reason character varying(200),
    detail character varying(500),
    at timestamp with time zone NOT NULL
);
CREATE SEQUENCE delivery_status_history_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE delivery_status_history_id_seq OWNED BY delivery_status_history.id;
CREATE TABLE ingested_events (
    event_id character varying(200) NOT NULL,
    event_type character varying(200) NOT NULL,
    school_id character varying(200) NOT NULL,
    digest character varying(64) NOT NULL,
    state character varying(20) NOT NULL,
    attempts integer NOT NULL,
    received_at timestamp with time zone NOT NULL,
    claimed_until timestamp with time zone,
    published_at timestamp with time zone,
    topic character varying(300) NOT NULL,
    kafka_partition integer,
    kafka_offset bigint
);
CREATE TABLE invitation_decisions (
    event_id character varying(200) NOT NULL,
    meeting_id character varying(200) NOT NULL,
    kind character varying(20) NOT NULL,
    sequence integer NOT NULL,
    changes character varying(100) NOT NULL,
    previous_snapshot text,
    newly_invited text NOT NULL
);
CREATE TABLE invitation_meeting_states (
    meeting_id character varying(200) NOT NULL,
    school_id character varying(200) NOT NULL,
    sequence integer NOT NULL,
    snapshot text NOT NULL,
    cancelled boolean NOT NULL,
    invited_guardians text NOT NULL,
    last_event_time timestamp with time zone
);
CREATE TABLE reminder_invitations (
    meeting_id character varying(200) NOT NULL,
    guardian_id character varying(200) NOT NULL,
    invited_at timestamp with time zone NOT NULL
);
CREATE TABLE reminder_meetings (
    meeting_id character varying(200) NOT NULL,
    first_starts_at timestamp with time zone NOT NULL,
    first_location text NOT NULL,
    last_event_time timestamp with time zone,
    cancelled boolean NOT NULL
);
CREATE TABLE reminders (
    reminder_id character varying(64) NOT NULL,
    meeting_id character varying(200) NOT NULL,
    school_id character varying(200) NOT NULL,
    guardian_id character varying(200) NOT NULL,
    channel character varying(10) NOT NULL,
    rule_id character varying(40) NOT NULL,
    starts_at timestamp with time zone NOT NULL,
    due_at timestamp with time zone NOT NULL,
    state character varying(12) NOT NULL,
    reason character varying(60),
    claimed_by character varying(100),
    lease_until timestamp with time zone,
    payload text NOT NULL,
    updated_at timestamp with time zone NOT NULL
);
CREATE TABLE unpublished_statuses (
    id bigint NOT NULL,
    notification_id character varying(26) NOT NULL,
    report text NOT NULL,
    kept_at timestamp with time zone NOT NULL
);
CREATE SEQUENCE unpublished_statuses_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE unpublished_statuses_id_seq OWNED BY unpublished_statuses.id;
ALTER TABLE ONLY delivery_status_history ALTER COLUMN id SET DEFAULT nextval('delivery_status_history_id_seq'::regclass);
ALTER TABLE ONLY unpublished_statuses ALTER COLUMN id SET DEFAULT nextval('unpublished_statuses_id_seq'::regclass);
ALTER TABLE ONLY invitation_decisions
    ADD CONSTRAINT invitation_decisions_pkey PRIMARY KEY (event_id);
ALTER TABLE ONLY invitation_meeting_states
    ADD CONSTRAINT invitation_meeting_states_pkey PRIMARY KEY (meeting_id);
ALTER TABLE ONLY deliveries
    ADD CONSTRAINT pk_deliveries PRIMARY KEY (notification_id);
ALTER TABLE ONLY delivery_retries
    ADD CONSTRAINT pk_delivery_retries PRIMARY KEY (notification_id);
ALTER TABLE ONLY delivery_status_history
    ADD CONSTRAINT pk_delivery_status_history PRIMARY KEY (id);
ALTER TABLE ONLY ingested_events
    ADD CONSTRAINT pk_ingested_events PRIMARY KEY (event_id);
ALTER TABLE ONLY unpublished_statuses
    ADD CONSTRAINT pk_unpublished_statuses PRIMARY KEY (id);
ALTER TABLE ONLY reminder_invitations
    ADD CONSTRAINT reminder_invitations_pkey PRIMARY KEY (meeting_id, guardian_id);
ALTER TABLE ONLY reminder_meetings
    ADD CONSTRAINT reminder_meetings_pkey PRIMARY KEY (meeting_id);
ALTER TABLE ONLY reminders
    ADD CONSTRAINT reminders_pkey PRIMARY KEY (reminder_id);
ALTER TABLE ONLY deliveries
    ADD CONSTRAINT uq_deliveries_key UNIQUE (source_event_id, guardian_id, channel, template);
CREATE INDEX ix_deliveries_provider_message_id ON deliveries USING btree (provider, provider_message_id);
CREATE INDEX ix_deliveries_school_id_created_at ON deliveries USING btree (school_id, created_at);
CREATE INDEX ix_deliveries_status ON deliveries USING btree (status);
CREATE INDEX ix_delivery_retries_due_at ON delivery_retries USING btree (due_at);
CREATE INDEX ix_delivery_status_history_notification_id ON delivery_status_history USING btree (notification_id);
CREATE INDEX ix_ingested_events_school_id_received_at ON ingested_events USING btree (school_id, received_at);
CREATE INDEX ix_invitation_decisions_meeting_id ON invitation_decisions USING btree (meeting_id);
CREATE INDEX ix_reminders_meeting_id ON reminders USING btree (meeting_id);
CREATE INDEX ix_reminders_open_due ON reminders USING btree (state, due_at);
ALTER TABLE ONLY delivery_retries
    ADD CONSTRAINT fk_delivery_retries_notification_id_deliveries FOREIGN KEY (notification_id) REFERENCES deliveries(notification_id) ON DELETE CASCADE;
ALTER TABLE ONLY delivery_status_history
    ADD CONSTRAINT fk_delivery_status_history_notification_id_deliveries FOREIGN KEY (notification_id) REFERENCES deliveries(notification_id) ON DELETE CASCADE;
