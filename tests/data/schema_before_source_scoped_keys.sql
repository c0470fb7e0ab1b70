-- The PostgreSQL tables as the version before source-scoped notification keys made them (pg_dump --schema-only
-- of every service's tables), for tests/test_upgrade_to_source_scoped_keys.py.
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
CREATE TABLE delivery_claims (
    notification_id character varying(26) NOT NULL,
    sender_id character varying(200) NOT NULL,
    attempts integer NOT NULL
);
CREATE TABLE delivery_retries (
    notification_id character varying(26) NOT NULL,
    due_at timestamp with time zone NOT NULL,
    attempt integer NOT NULL,
    job text NOT NULL,
    claimed_by character varying(200),
    claimed_until timestamp with time zone
);
CREATE TABLE delivery_senders (
    sender_id character varying(200) NOT NULL,
    started_at timestamp with time zone NOT NULL,
    heartbeat_at timestamp with time zone NOT NULL
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
CREATE TABLE digest_items (
    item_id character varying(64) NOT NULL,
    school_id character varying(200) NOT NULL,
    timezone character varying(64) NOT NULL,
    guardian_id character varying(200) NOT NULL,
    period character varying(10) NOT NULL,
    kind character varying(10) NOT NULL,
    section character varying(300) NOT NULL,
    sort_at timestamp with time zone NOT NULL,
    payload text NOT NULL,
    school text NOT NULL,
    guardian text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    digest_id character varying(300)
);
CREATE TABLE digest_notices (
    notice_id character varying(64) NOT NULL,
    kind character varying(10) NOT NULL,
    school_id character varying(200) NOT NULL,
    guardian_id character varying(200) NOT NULL,
    group_key character varying(300) NOT NULL,
    due_at timestamp with time zone NOT NULL,
    state character varying(10) NOT NULL,
    payload text NOT NULL,
    school text NOT NULL,
    guardian text NOT NULL,
    claimed_by character varying(100),
    lease_until timestamp with time zone,
    updated_at timestamp with time zone NOT NULL
);
CREATE TABLE digests (
    digest_id character varying(300) NOT NULL,
    school_id character varying(200) NOT NULL,
    guardian_id character varying(200) NOT NULL,
    period character varying(10) NOT NULL,
    slot_at timestamp with time zone NOT NULL,
    state character varying(10) NOT NULL,
    not_before timestamp with time zone NOT NULL,
    claimed_by character varying(100),
    lease_until timestamp with time zone,
    reason character varying(80),
    updated_at timestamp with time zone NOT NULL
);
CREATE TABLE ingested_events (
    school_id character varying(200) NOT NULL,
    source character varying(500) NOT NULL,
    event_id character varying(200) NOT NULL,
    event_type character varying(200) NOT NULL,
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
    school_id character varying(200) NOT NULL,
    source character varying(500) NOT NULL,
    event_id character varying(200) NOT NULL,
    meeting_id character varying(200) NOT NULL,
    kind character varying(20) NOT NULL,
    sequence integer NOT NULL,
    changes character varying(100) NOT NULL,
    previous_snapshot text,
    newly_invited text NOT NULL
);
CREATE TABLE invitation_meeting_states (
    school_id character varying(200) NOT NULL,
    meeting_id character varying(200) NOT NULL,
    sequence integer NOT NULL,
    snapshot text NOT NULL,
    cancelled boolean NOT NULL,
    invited_guardians text NOT NULL,
    last_event_time timestamp with time zone,
    ends_at timestamp with time zone NOT NULL
);
CREATE TABLE reminder_answers (
    school_id character varying(200) NOT NULL,
    meeting_id character varying(200) NOT NULL,
    guardian_id character varying(200) NOT NULL,
    answer character varying(20) NOT NULL,
    answered_at timestamp with time zone NOT NULL
);
CREATE TABLE reminder_invitations (
    school_id character varying(200) NOT NULL,
    meeting_id character varying(200) NOT NULL,
    guardian_id character varying(200) NOT NULL,
    invited_at timestamp with time zone NOT NULL
);
CREATE TABLE reminder_meetings (
    school_id character varying(200) NOT NULL,
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
CREATE TABLE response_answers (
    school_id character varying(200) NOT NULL,
    meeting_id character varying(200) NOT NULL,
    guardian_id character varying(200) NOT NULL,
    answer character varying(20) NOT NULL,
    interpreter_language character varying(35),
    comment text,
    via character varying(10) NOT NULL,
    answered_at timestamp with time zone NOT NULL
);
CREATE TABLE response_invitations (
    reference character varying(18) NOT NULL,
    school_id character varying(200) NOT NULL,
    meeting_id character varying(200) NOT NULL,
    guardian_id character varying(200) NOT NULL,
    language character varying(35) NOT NULL,
    phone character varying(40),
    invited boolean NOT NULL,
    invited_at timestamp with time zone NOT NULL
);
CREATE TABLE response_meetings (
    school_id character varying(200) NOT NULL,
    meeting_id character varying(200) NOT NULL,
    school_name character varying(300) NOT NULL,
    title character varying(300) NOT NULL,
    starts_at timestamp with time zone NOT NULL,
    ends_at timestamp with time zone NOT NULL,
    location character varying(300) NOT NULL,
    timezone character varying(100) NOT NULL,
    written_standard character varying(10) NOT NULL,
    cancelled boolean NOT NULL
);
CREATE TABLE response_outbox (
    "position" integer NOT NULL,
    event_id character varying(200) NOT NULL,
    event_type character varying(100) NOT NULL,
    kafka_key bytea NOT NULL,
    value bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    published_at timestamp with time zone,
    attempts integer NOT NULL
);
CREATE SEQUENCE response_outbox_position_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE response_outbox_position_seq OWNED BY response_outbox."position";
CREATE TABLE response_sms_replies (
    provider character varying(20) NOT NULL,
    message_id character varying(200) NOT NULL,
    received_at timestamp with time zone NOT NULL
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
ALTER TABLE ONLY response_outbox ALTER COLUMN "position" SET DEFAULT nextval('response_outbox_position_seq'::regclass);
ALTER TABLE ONLY unpublished_statuses ALTER COLUMN id SET DEFAULT nextval('unpublished_statuses_id_seq'::regclass);
ALTER TABLE ONLY digest_items
    ADD CONSTRAINT digest_items_pkey PRIMARY KEY (item_id);
ALTER TABLE ONLY digest_notices
    ADD CONSTRAINT digest_notices_pkey PRIMARY KEY (notice_id);
ALTER TABLE ONLY digests
    ADD CONSTRAINT digests_pkey PRIMARY KEY (digest_id);
ALTER TABLE ONLY invitation_decisions
    ADD CONSTRAINT invitation_decisions_pkey PRIMARY KEY (school_id, source, event_id);
ALTER TABLE ONLY invitation_meeting_states
    ADD CONSTRAINT invitation_meeting_states_pkey PRIMARY KEY (school_id, meeting_id);
ALTER TABLE ONLY deliveries
    ADD CONSTRAINT pk_deliveries PRIMARY KEY (notification_id);
ALTER TABLE ONLY delivery_claims
    ADD CONSTRAINT pk_delivery_claims PRIMARY KEY (notification_id);
ALTER TABLE ONLY delivery_retries
    ADD CONSTRAINT pk_delivery_retries PRIMARY KEY (notification_id);
ALTER TABLE ONLY delivery_senders
    ADD CONSTRAINT pk_delivery_senders PRIMARY KEY (sender_id);
ALTER TABLE ONLY delivery_status_history
    ADD CONSTRAINT pk_delivery_status_history PRIMARY KEY (id);
ALTER TABLE ONLY ingested_events
    ADD CONSTRAINT pk_ingested_events PRIMARY KEY (school_id, source, event_id);
ALTER TABLE ONLY response_answers
    ADD CONSTRAINT pk_response_answers PRIMARY KEY (school_id, meeting_id, guardian_id);
ALTER TABLE ONLY response_invitations
    ADD CONSTRAINT pk_response_invitations PRIMARY KEY (reference);
ALTER TABLE ONLY response_meetings
    ADD CONSTRAINT pk_response_meetings PRIMARY KEY (school_id, meeting_id);
ALTER TABLE ONLY response_outbox
    ADD CONSTRAINT pk_response_outbox PRIMARY KEY ("position");
ALTER TABLE ONLY response_sms_replies
    ADD CONSTRAINT pk_response_sms_replies PRIMARY KEY (provider, message_id);
ALTER TABLE ONLY unpublished_statuses
    ADD CONSTRAINT pk_unpublished_statuses PRIMARY KEY (id);
ALTER TABLE ONLY reminder_answers
    ADD CONSTRAINT reminder_answers_pkey PRIMARY KEY (school_id, meeting_id, guardian_id);
ALTER TABLE ONLY reminder_invitations
    ADD CONSTRAINT reminder_invitations_pkey PRIMARY KEY (school_id, meeting_id, guardian_id);
ALTER TABLE ONLY reminder_meetings
    ADD CONSTRAINT reminder_meetings_pkey PRIMARY KEY (school_id, meeting_id);
ALTER TABLE ONLY reminders
    ADD CONSTRAINT reminders_pkey PRIMARY KEY (reminder_id);
ALTER TABLE ONLY deliveries
    ADD CONSTRAINT uq_deliveries_key UNIQUE (school_id, source_event_id, guardian_id, channel, template);
ALTER TABLE ONLY response_outbox
    ADD CONSTRAINT uq_response_outbox_event_id UNIQUE (event_id);
CREATE INDEX ix_deliveries_provider_message_id ON deliveries USING btree (provider, provider_message_id);
CREATE INDEX ix_deliveries_school_id_created_at ON deliveries USING btree (school_id, created_at);
CREATE INDEX ix_deliveries_source_event_id ON deliveries USING btree (source_event_id);
CREATE INDEX ix_deliveries_status ON deliveries USING btree (status);
CREATE INDEX ix_delivery_claims_sender_id ON delivery_claims USING btree (sender_id);
CREATE INDEX ix_delivery_retries_due_at ON delivery_retries USING btree (due_at);
CREATE INDEX ix_delivery_senders_heartbeat_at ON delivery_senders USING btree (heartbeat_at);
CREATE INDEX ix_delivery_status_history_notification_id ON delivery_status_history USING btree (notification_id);
CREATE INDEX ix_digest_items_digest ON digest_items USING btree (digest_id);
CREATE INDEX ix_digest_items_waiting ON digest_items USING btree (school_id, period, digest_id);
CREATE INDEX ix_digest_notices_group ON digest_notices USING btree (school_id, guardian_id, group_key, state);
CREATE INDEX ix_digest_notices_open ON digest_notices USING btree (state, due_at);
CREATE INDEX ix_digests_open ON digests USING btree (state, not_before);
CREATE INDEX ix_ingested_events_school_id_received_at ON ingested_events USING btree (school_id, received_at);
CREATE INDEX ix_reminders_open_due ON reminders USING btree (state, due_at);
CREATE INDEX ix_reminders_school_meeting ON reminders USING btree (school_id, meeting_id);
CREATE INDEX ix_response_invitations_meeting ON response_invitations USING btree (school_id, meeting_id);
CREATE INDEX ix_response_invitations_phone ON response_invitations USING btree (phone);
CREATE INDEX ix_response_outbox_unpublished ON response_outbox USING btree (published_at, "position");
ALTER TABLE ONLY delivery_claims
    ADD CONSTRAINT fk_delivery_claims_notification_id_deliveries FOREIGN KEY (notification_id) REFERENCES deliveries(notification_id) ON DELETE CASCADE;
ALTER TABLE ONLY delivery_retries
    ADD CONSTRAINT fk_delivery_retries_notification_id_deliveries FOREIGN KEY (notification_id) REFERENCES deliveries(notification_id) ON DELETE CASCADE;
ALTER TABLE ONLY delivery_status_history
    ADD CONSTRAINT fk_delivery_status_history_notification_id_deliveries FOREIGN KEY (notification_id) REFERENCES deliveries(notification_id) ON DELETE CASCADE;
