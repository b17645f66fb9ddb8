def test_create_then_read(api):
    created = api.post("/v1/contacts", {"phone": "+14155552671", "first_name": "Ada"}, format="json")
    assert created.status_code == 201, created.json()
    got = api.get(f"/v1/contacts/{created.json()['id']}")
    assert got.status_code == 200
    assert got.json()["phone"] == "+14155552671"
    assert got.json()["country"] == "US"
