"""Named, ordered migrations, recorded in `schema_migrations` so rerunning does nothing."""

MIGRATIONS: list[tuple[str, str]] = [
    (
        "create_core_tables",
        """
        CREATE TABLE pairs (
            pair_id VARCHAR PRIMARY KEY,
            prompt VARCHAR NOT NULL,
            response_a VARCHAR NOT NULL,
            response_b VARCHAR NOT NULL,
            content_hash VARCHAR NOT NULL,
            source VARCHAR,
            category VARCHAR,
            extra JSON,
            source_file VARCHAR NOT NULL,
            source_line BIGINT NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT now()
        );
        CREATE TABLE gold_labels (
            pair_id VARCHAR NOT NULL,
            label VARCHAR NOT NULL CHECK (label IN ('A', 'B', 'tie')),
            annotator VARCHAR NOT NULL,
            origin VARCHAR NOT NULL,
            note VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT now(),
            PRIMARY KEY (pair_id, annotator, origin)
        );
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            command VARCHAR NOT NULL,
            judge_key VARCHAR,
            judge_id VARCHAR,
            mode VARCHAR,
            samples INTEGER,
            params JSON,
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            status VARCHAR NOT NULL,
            n_target BIGINT NOT NULL DEFAULT 0,
            n_done BIGINT NOT NULL DEFAULT 0,
            pid INTEGER,
            host VARCHAR
        );
        CREATE TABLE judgments (
            pair_id VARCHAR NOT NULL,
            judge_key VARCHAR NOT NULL,
            judge_id VARCHAR NOT NULL,
            mode VARCHAR NOT NULL,
            samples INTEGER NOT NULL,
            seed BIGINT NOT NULL,
            template_hash VARCHAR NOT NULL,
            label VARCHAR,
            confidence DOUBLE NOT NULL,
            p_a DOUBLE,
            votes_a INTEGER NOT NULL,
            votes_b INTEGER NOT NULL,
            abstained INTEGER NOT NULL,
            order_consistent BOOLEAN,
            label_ab VARCHAR,
            label_ba VARCHAR,
            rationale VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (pair_id, judge_key)
        );
        CREATE TABLE samples (
            pair_id VARCHAR NOT NULL,
            judge_key VARCHAR NOT NULL,
            position VARCHAR NOT NULL CHECK (position IN ('AB', 'BA')),
            sample_idx INTEGER NOT NULL,
            text VARCHAR NOT NULL,
            verdict VARCHAR,
            logprob_a DOUBLE,
            logprob_b DOUBLE,
            forced BOOLEAN NOT NULL DEFAULT false,
            PRIMARY KEY (pair_id, judge_key, position, sample_idx)
        );
        CREATE TABLE quarantine (
            file VARCHAR NOT NULL,
            line BIGINT NOT NULL,
            field VARCHAR,
            reason VARCHAR NOT NULL,
            raw VARCHAR,
            raw_hash VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT now(),
            PRIMARY KEY (file, line, raw_hash)
        );
        """,
    ),
    (
        "create_review_items",
        """
        CREATE TABLE review_items (
            dataset VARCHAR NOT NULL,
            pair_id VARCHAR NOT NULL,
            route_reason VARCHAR NOT NULL,
            judge_key VARCHAR NOT NULL,
            judge_id VARCHAR NOT NULL,
            judge_label VARCHAR,
            judge_confidence DOUBLE NOT NULL,
            status VARCHAR NOT NULL DEFAULT 'routed'
                CHECK (status IN ('routed', 'pushed', 'answered', 'discarded')),
            routed_at TIMESTAMP NOT NULL DEFAULT now(),
            pushed_at TIMESTAMP,
            pulled_at TIMESTAMP,
            PRIMARY KEY (dataset, pair_id)
        );
        """,
    ),
    (
        "create_calibrations",
        """
        CREATE TABLE calibrations (
            judge_id VARCHAR NOT NULL,
            mode VARCHAR NOT NULL,
            samples INTEGER NOT NULL,
            method VARCHAR NOT NULL CHECK (method IN ('temperature')),
            temperature DOUBLE NOT NULL CHECK (temperature > 0),
            n_pairs BIGINT NOT NULL,
            ece_before DOUBLE,
            ece_after DOUBLE,
            fitted_on VARCHAR NOT NULL,
            fitted_at TIMESTAMP NOT NULL,
            PRIMARY KEY (judge_id, mode, samples)
        );
        """,
    ),
    (
        "create_judges_and_gold_split",
        """
        CREATE TABLE judges (
            version VARCHAR PRIMARY KEY,
            method VARCHAR NOT NULL,
            parent VARCHAR,
            start_judge_id VARCHAR NOT NULL,
            base_model VARCHAR NOT NULL,
            path VARCHAR NOT NULL,
            weights VARCHAR NOT NULL CHECK (weights IN ('lora', 'full')),
            backend VARCHAR NOT NULL,
            mode VARCHAR NOT NULL CHECK (mode IN ('direct', 'cot')),
            samples INTEGER NOT NULL,
            judge_id VARCHAR NOT NULL,
            heldout_n INTEGER NOT NULL,
            heldout_agreement DOUBLE,
            parent_agreement DOUBLE,
            promoted BOOLEAN NOT NULL,
            active BOOLEAN NOT NULL DEFAULT false,
            created_at TIMESTAMP NOT NULL,
            metrics JSON
        );
        CREATE TABLE gold_split (
            pair_id VARCHAR PRIMARY KEY,
            split VARCHAR NOT NULL CHECK (split IN ('train', 'heldout')),
            prompt_hash VARCHAR NOT NULL,
            seed BIGINT NOT NULL,
            assigned_at TIMESTAMP NOT NULL
        );
        """,
    ),
    (
        "add_prompt_messages",
        # a conversation's prompt as [{role, content}]; `prompt` keeps its readable transcript
        "ALTER TABLE pairs ADD COLUMN prompt_messages JSON;",
    ),
    (
        "create_leases",
        """
        CREATE TABLE leases (
            pair_id VARCHAR NOT NULL,
            judge_key VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL,
            expires_at TIMESTAMP NOT NULL,
            PRIMARY KEY (pair_id, judge_key)
        );
        """,
    ),
    (
        "judges_weights_head",
        # bt-probe versions store a head on the frozen base (weights = 'head'); DuckDB cannot alter a CHECK
        """
        CREATE TABLE judges_v7 (
            version VARCHAR PRIMARY KEY,
            method VARCHAR NOT NULL,
            parent VARCHAR,
            start_judge_id VARCHAR NOT NULL,
            base_model VARCHAR NOT NULL,
            path VARCHAR NOT NULL,
            weights VARCHAR NOT NULL CHECK (weights IN ('lora', 'full', 'head')),
            backend VARCHAR NOT NULL,
            mode VARCHAR NOT NULL CHECK (mode IN ('direct', 'cot')),
            samples INTEGER NOT NULL,
            judge_id VARCHAR NOT NULL,
            heldout_n INTEGER NOT NULL,
            heldout_agreement DOUBLE,
            parent_agreement DOUBLE,
            promoted BOOLEAN NOT NULL,
            active BOOLEAN NOT NULL DEFAULT false,
            created_at TIMESTAMP NOT NULL,
            metrics JSON
        );
        INSERT INTO judges_v7 SELECT * FROM judges;
        DROP TABLE judges;
        ALTER TABLE judges_v7 RENAME TO judges;
        """,
    ),
    (
        "judgment_margin",
        # a reward judge's mean reward difference and its spread over an ensemble's heads (preference strength)
        "ALTER TABLE judgments ADD COLUMN margin DOUBLE; ALTER TABLE judgments ADD COLUMN margin_sd DOUBLE;",
    ),
    (
        "create_audits",
        # `labeler audit`: each human-labelled pair's cross-fitted preference strength (oriented to the human's
        # choice) and whether the judge's heads confidently contradict the human label
        """
        CREATE TABLE audits (
            pair_id VARCHAR PRIMARY KEY,
            judge_id VARCHAR NOT NULL,
            human VARCHAR NOT NULL CHECK (human IN ('A', 'B')),
            strength DOUBLE NOT NULL,
            spread DOUBLE NOT NULL,
            p_human DOUBLE NOT NULL,
            flagged BOOLEAN NOT NULL,
            audited_at TIMESTAMP NOT NULL
        );
        """,
    ),
    (
        "create_rankings",
        # N responses per prompt (labeler rank): the group, its responses, the pairs compared, the responses' scores
        """
        CREATE TABLE rank_groups (
            group_id VARCHAR PRIMARY KEY,
            prompt VARCHAR NOT NULL,
            prompt_messages JSON,
            n INTEGER NOT NULL,
            given_id VARCHAR,
            source VARCHAR,
            category VARCHAR,
            source_file VARCHAR NOT NULL,
            source_line BIGINT NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT now()
        );
        CREATE TABLE rank_responses (
            group_id VARCHAR NOT NULL,
            idx INTEGER NOT NULL,
            response VARCHAR NOT NULL,
            rating DOUBLE,
            model VARCHAR,
            PRIMARY KEY (group_id, idx)
        );
        CREATE TABLE rank_pairs (
            group_id VARCHAR NOT NULL,
            idx_a INTEGER NOT NULL,
            idx_b INTEGER NOT NULL,
            pair_id VARCHAR NOT NULL,
            PRIMARY KEY (group_id, idx_a, idx_b)
        );
        CREATE TABLE rank_scores (
            group_id VARCHAR NOT NULL,
            judge_key VARCHAR NOT NULL,
            idx INTEGER NOT NULL,
            judge_id VARCHAR NOT NULL,
            method VARCHAR NOT NULL CHECK (method IN ('reward', 'bt')),
            score DOUBLE NOT NULL,
            uncertainty DOUBLE,
            comparisons INTEGER NOT NULL,
            run_id VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT now(),
            PRIMARY KEY (group_id, judge_key, idx)
        );
        """,
    ),
    (
        "create_rank_review_items",
        # uncertain rankings sent to Argilla (`labeler review push --rankings`): one record per group, in the dataset
        # `<dataset>-rankings-<n>` (Argilla fixes a dataset's fields and ranking values, so one dataset per N)
        """
        CREATE TABLE rank_review_items (
            dataset VARCHAR NOT NULL,
            group_id VARCHAR NOT NULL,
            n INTEGER NOT NULL,
            route_reason VARCHAR NOT NULL,
            judge_key VARCHAR NOT NULL,
            judge_id VARCHAR NOT NULL,
            judge_order INTEGER[] NOT NULL,
            margin DOUBLE NOT NULL,
            z DOUBLE,
            status VARCHAR NOT NULL DEFAULT 'routed'
                CHECK (status IN ('routed', 'pushed', 'answered', 'discarded')),
            routed_at TIMESTAMP NOT NULL DEFAULT now(),
            pushed_at TIMESTAMP,
            pulled_at TIMESTAMP,
            PRIMARY KEY (dataset, group_id)
        );
        """,
    ),
]
