def test_patient_list_renders_for_a_coordinator(client_for, coordinator):
    response = client_for(coordinator).get("/patients/")
    assert response.status_code == 200
