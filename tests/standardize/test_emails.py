from accord.standardize import StandardEmail, standardize_email, standardize_email_list


def test_email_is_trimmed_and_lowercased():
    assert standardize_email("  Ann.Lee@Acme.ORG ") == StandardEmail("ann.lee@acme.org")


def test_gmail_dots_and_plus_tags_are_removed():
    assert standardize_email("John.Smith+news@gmail.com").email == "johnsmith@gmail.com"


def test_googlemail_becomes_gmail():
    assert standardize_email("j.smith@googlemail.com").email == "jsmith@gmail.com"


def test_plus_tag_removed_for_outlook_icloud_fastmail_proton():
    assert standardize_email("ann+shop@outlook.com").email == "ann@outlook.com"
    assert standardize_email("ann+shop@icloud.com").email == "ann@icloud.com"
    assert standardize_email("ann+shop@fastmail.com").email == "ann@fastmail.com"
    assert standardize_email("ann+shop@proton.me").email == "ann@proton.me"


def test_plus_tag_kept_for_unknown_providers():
    assert standardize_email("ann+shop@acme.com").email == "ann+shop@acme.com"


def test_dots_kept_outside_gmail():
    assert standardize_email("ann.lee@outlook.com").email == "ann.lee@outlook.com"


def test_yahoo_keeps_plus_and_drops_hyphen_keyword():
    assert standardize_email("ann+x@yahoo.com").email == "ann+x@yahoo.com"
    assert standardize_email("ann-shop@yahoo.com").email == "ann@yahoo.com"


def test_invalid_syntax_is_dropped_and_flagged():
    assert standardize_email("ann@") == StandardEmail(None, "invalid_email")
    assert standardize_email("ann..lee@x.com") == StandardEmail(None, "invalid_email")


def test_placeholder_emails_are_dropped_and_flagged():
    for raw in ("test@test.com", "noemail@acme.com", "none@none.com", "N/A"):
        assert standardize_email(raw) == StandardEmail(None, "placeholder_email"), raw


def test_empty_email_is_none_without_flag():
    assert standardize_email("  ") == StandardEmail(None)


def test_email_list_is_deduplicated_in_order_with_flags():
    raw = '["B@x.com", "a@x.com", "b@X.com", "bad@"]'
    assert standardize_email_list(raw) == (("b@x.com", "a@x.com"), ("invalid_email",))


def test_email_list_accepts_plain_separated_text():
    assert standardize_email_list("a@x.com; b@x.com") == (("a@x.com", "b@x.com"), ())


def test_example_domains_are_placeholders():
    assert standardize_email("ann@example.com") == StandardEmail(None, "placeholder_email")
