import pytest

from service.common.errors import ValidationFailedError
from service.common.pii import id_card_check_char as check_digit
from service.common.pii import id_card_problem, validate_id_card

# A well-known valid sample number (GB 11643 annex example form).
VALID = "11010519491231002X"


def test_check_digit_of_the_standard_example():
    assert check_digit(VALID[:17]) == "X"


def test_valid_number_is_normalised_to_upper_case():
    assert validate_id_card(" 11010519491231002x ") == VALID


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("110105194912310021", "check digit"),
        ("11010519491331002X", "not a real date"),
        ("1101051949123100", "18 characters"),
        ("01010519491231002X", "not a Chinese province"),
        ("11010518491231002X", "out of range"),
    ],
)
def test_invalid_numbers_say_why(value, fragment):
    assert fragment in (id_card_problem(value) or "")


def test_validate_id_card_raises_a_field_error():
    with pytest.raises(ValidationFailedError) as info:
        validate_id_card("110105194912310021", field="answers.id_card")
    assert info.value.code == "invalid_id_card"
    assert "answers.id_card" in info.value.errors
