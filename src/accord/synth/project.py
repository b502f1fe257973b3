"""The accord.yaml written beside the sample data: every source mapped, ready to ingest."""

from datetime import date, timedelta

ACCORD_YAML = """\
# Written by `accord synth`: a ready project over the sample sources in this folder.
# truth.csv (source, record_key, person_id) is the answer key; it is not a source.
project: synth-demo
store: duckdb:///accord.duckdb
identity:
  default_region: US
traits:
  as_of: AS_OF          # the end of the sample's activity window: time windows end here
segments:
  definitions:
    - name: champions
      condition: "rfm_segment = 'champions'"
    - name: repeat_buyers_90d
      condition: "orders_90d >= 2"
    - name: at_risk_subscribers
      condition: "churn_risk >= 0.5 and revenue_total > 0"
      requires_consent: [email_marketing]
sources:
  - name: crm
    format: csv
    kind: people
    path: crm_contacts.csv
    primary_key: contact_id
    snapshot: full
    priority: 10
    fields:
      given_name: first_name
      family_name: last_name
      emails: [email]
      phones: [phone]
      street: street
      city: city
      postcode: postcode
      country: country
      date_of_birth: dob
      company: company
      created_at: created_at
      updated_at: updated_at
      external_ids: {crm_contact_id: contact_id}
      consent: {email_marketing: marketing_opt_in}

  - name: shop
    format: jsonl
    kind: people
    path: shop_customers.jsonl
    primary_key: customer_id
    snapshot: full
    priority: 20
    fields:
      full_name: {column: name, split: "given family"}
      emails: [email]
      phones: [phone]
      street: ship_street
      city: ship_city
      postcode: ship_postcode
      country: ship_country
      company: company
      created_at: created_at
      updated_at: updated_at
      external_ids: {shop_customer_id: customer_id}
      consent: {email_marketing: accepts_marketing}

  - name: pos
    format: csv
    kind: people
    path: pos_loyalty.csv
    primary_key: loyalty_id
    snapshot: full
    priority: 30
    fields:
      full_name: {column: name, split: "family, given"}
      phones: [phone]
      postcode: postcode
      country: store_country
      date_of_birth: dob
      created_at: joined_at
      external_ids: {pos_loyalty_id: loyalty_id}

  - name: support
    format: csv
    kind: people
    path: support_tickets.csv
    primary_key: ticket_id
    snapshot: incremental
    priority: 40
    fields:
      full_name: {column: requester_name, split: "given family"}
      emails: [requester_email]
      created_at: created_at
      external_ids: {support_ticket_id: ticket_id}

  - name: shop_orders
    format: jsonl
    kind: events
    path: shop_orders.jsonl
    primary_key: order_id
    events:
      event: {constant: Order Completed}
      timestamp: ordered_at
      identity_type: shop_customer_id
      identity: customer_id
      revenue: total

  - name: pos_transactions
    format: parquet
    kind: events
    path: pos_transactions.parquet
    primary_key: transaction_id
    events:
      event: {constant: Store Purchase}
      timestamp: occurred_at
      identity_type: pos_loyalty_id
      identity: loyalty_id
      revenue: amount

  - name: email_events
    format: csv
    kind: events
    path: email_events.csv
    primary_key: event_id
    events:
      event: event_type
      timestamp: occurred_at
      identity_type: email
      identity: email

  - name: web_events
    format: jsonl
    kind: events
    path: web_events.jsonl
    primary_key: messageId
    events:
      event: event
      type: {column: type}
      timestamp: timestamp
      identity_type: user_id
      identity: userId
      anonymous_id: anonymousId
"""


def project_yaml(start: date, days: int) -> str:
    """ACCORD_YAML with trait windows ending where the sample's activity ends (not today, which would
    leave every "last 90 days" trait of old sample data at zero)."""
    return ACCORD_YAML.replace("AS_OF", (start + timedelta(days=days)).isoformat())
