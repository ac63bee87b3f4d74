"""The state machines as data: the tables say exactly what the contract says."""

from central.orders.states import (
    OrderStatus,
    TransferStatus,
    is_terminal_order,
    is_terminal_transfer,
    order_sources,
    transfer_sources,
)

O = OrderStatus
T = TransferStatus


def test_order_sources_follow_the_contract() -> None:
    assert order_sources(O.CONFIRMED) == [O.PENDING]
    assert order_sources(O.FAILED) == [O.PENDING]
    assert order_sources(O.REFUNDED) == [O.CONFIRMED]
    assert order_sources(O.PENDING) == []


def test_only_compensation_fails_a_confirmed_order() -> None:
    assert sorted(order_sources(O.FAILED, compensation=True)) == sorted([O.PENDING, O.CONFIRMED])
    assert order_sources(O.CONFIRMED, compensation=True) == [O.PENDING]


def test_transfer_sources_follow_the_contract() -> None:
    assert transfer_sources(T.PENDING_OTP) == [T.INITIATED]
    assert sorted(transfer_sources(T.FAILED)) == sorted([T.INITIATED, T.PENDING_OTP])
    assert sorted(transfer_sources(T.COMPLETED)) == sorted([T.PENDING_OTP, T.DISPUTED])
    assert transfer_sources(T.DISPUTED) == [T.COMPLETED]
    assert transfer_sources(T.REVERSED) == [T.DISPUTED]
    assert transfer_sources(T.INITIATED) == []


def test_terminal_states() -> None:
    assert [s for s in O if is_terminal_order(s)] == [O.FAILED, O.REFUNDED]
    assert sorted(s for s in T if is_terminal_transfer(s)) == sorted([T.FAILED, T.REVERSED])
