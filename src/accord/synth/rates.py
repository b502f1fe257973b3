"""How often each kind of real-world messiness appears in the generated sources."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class VariationRates:
    """Rates of variation between a person's records; see docs/synth.md for each kind.

    *Record* rates apply to each people-source record (crm, shop, pos, support)
    independently. *Person* rates apply once per true person and then show up in
    every record of that person. The name variations (typo .. swapped_names) are
    mutually exclusive per record, so their sum must stay below 1.
    """

    # per record: one name variation at most
    typo: float = 0.02
    """A keyboard-neighbour substitution in the given or family name."""
    transposition: float = 0.01
    """Two adjacent letters swapped."""
    deletion: float = 0.01
    """One letter dropped."""
    nickname: float = 0.15
    """Given name written as a nickname (Robert -> Bob); of records whose name has one."""
    initial: float = 0.02
    """Given name reduced to its initial ('J' or 'J.')."""
    swapped_names: float = 0.01
    """Given and family name exchanged."""
    # per record: independent of the above
    mixed_case: float = 0.03
    """Name written in upper or lower case."""
    accent_stripped: float = 0.3
    """A name with accents written without them (Müller -> Muller / Mueller); of accented names."""
    missing_field: float = 0.05
    """Each optional field (email, phone, street, date of birth, postcode) left empty."""
    junk: float = 0.01
    """Placeholder instead of a real email or phone (test@test.com, 000-000-0000, N/A)."""
    phone_format: float = 0.3
    """Phone written in another format than the source's usual one."""
    postcode_format: float = 0.05
    """Postcode written in a variant (no space, lower case, ZIP+4, lost leading zero, D-/F- prefix)."""
    date_format: float = 0.05
    """Date of birth written in another format than the source's usual one."""
    address_format: float = 0.1
    """Street type abbreviated (Street -> St, straße -> str.)."""
    # per person
    moved: float = 0.08
    """Person moved in the window: older records keep the old address."""
    changed_email: float = 0.06
    """Person changed email: older records and events keep the old one."""
    married_name: float = 0.08
    """Of women: changed family name on marriage; older records keep the previous one."""
    household: float = 0.1
    """Person shares address and family name with another (different) person."""
    shared_email: float = 0.2
    """Of household members: uses the household's email."""
    shared_phone: float = 0.3
    """Of household members: gives the household's phone."""
    twin: float = 0.005
    """Person is a twin: same household, same date of birth."""
    namesake: float = 0.01
    """Person has exactly the name of another, unrelated person (beyond chance collisions)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"VariationRates.{f.name}: expected a rate between 0 and 1; got {value!r}")
        name_total = self.typo + self.transposition + self.deletion + self.nickname + self.initial + self.swapped_names
        if name_total > 1.0:
            raise ValueError(f"VariationRates: name variation rates sum to {name_total:.3f}; keep them below 1")

    @classmethod
    def none(cls) -> VariationRates:
        """No variation at all: every record shows the person's true values."""
        return cls(**{f.name: 0.0 for f in fields(cls)})
