"""Sensitivity plots give the same bytes for the same runs on every machine."""

from toxbench.analysis.sensitivity import stable_ids


def test_hashed_svg_ids_are_numbered_in_order_of_appearance():
    a = '<clipPath id="p4ce89623fa"/><path id="m0c54ecbfdd"/><use xlink:href="#m0c54ecbfdd"/><g clip-path="url(#p4ce89623fa)"/>'
    b = a.replace("p4ce89623fa", "pf95908a60d").replace(
        "m0c54ecbfdd", "m2f78cb5b28"
    )  # the hashes another machine's floats give
    assert (
        stable_ids(a)
        == stable_ids(b)
        == '<clipPath id="p0"/><path id="m1"/><use xlink:href="#m1"/><g clip-path="url(#p0)"/>'
    )
    assert stable_ids("<text>m0c54ecbfd</text>") == "<text>m0c54ecbfd</text>"  # nine digits: not an id
