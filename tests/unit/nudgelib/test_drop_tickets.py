"""A read that began before a drop may not keep what it brought back; one after may."""

from nudgelib.drop_tickets import DropTickets


def test_a_read_overtaken_by_a_drop_of_its_key_keeps_nothing():
    tickets = DropTickets(10)
    ticket = tickets.ticket()  # a read starts...
    tickets.dropped("u1")  # ...word of a change arrives...
    assert not tickets.may_keep("u1", ticket)  # ...and its answer is older than that
    assert tickets.may_keep("u2", ticket)  # other keys are not concerned
    assert tickets.may_keep("u1", tickets.ticket())  # a read started since may keep


def test_a_drop_of_everything_stops_every_read_under_way():
    tickets = DropTickets(10)
    ticket = tickets.ticket()
    tickets.dropped_all()
    assert not tickets.may_keep("anyone", ticket)
    assert tickets.may_keep("anyone", tickets.ticket())


def test_past_its_memory_an_old_ticket_can_no_longer_tell_and_keeps_nothing():
    tickets = DropTickets(0)  # remembers at least 1024 keys
    ticket = tickets.ticket()
    for i in range(1025):
        tickets.dropped(f"u{i}")
    # u0's drop is forgotten: a read older than it cannot be told apart from a stale one.
    assert not tickets.may_keep("never-dropped", ticket)
    assert tickets.may_keep("u0", tickets.ticket())
