"""Every pandera contract accepts a valid record and rejects each kind of invalid one, by rule."""

from __future__ import annotations

import copy

import pytest

from ps_pipelines.lib.contracts import CONTRACTS_BY_KEY, EVERY_CONTRACT
from ps_pipelines.lib.contracts.base import EntityContract, flatten_record
from ps_pipelines.lib.contracts.validate import validate_records

SF_TS = "2026-10-01T12:34:56.000+0000"
KT_TS = "2026-10-01T12:34:56+00:00"
NS_TS = "2026-10-01T12:34:56Z"
HS_TS = "2026-10-01T12:34:56.789Z"


def _hubspot(record_id: str, modified: str = "hs_lastmodifieddate", **properties: object) -> dict:
    """A HubSpot CRM object as the API answers it: every property value a string."""
    return {"id": record_id, "properties": {"hs_object_id": record_id, "createdate": HS_TS, modified: HS_TS,
                                            "ps_external_id": None, **properties},
            "createdAt": HS_TS, "updatedAt": HS_TS, "archived": False}


# One valid record per entity, in the platform's wire shape (before flattening).
VALID = {
    "salesforce__accounts": {"Id": "001000000000001AAA", "Name": "Acme Advisory", "Type": "Customer",
                             "Industry": "Banking", "BillingCountry": "US", "CurrencyIsoCode": "USD",
                             "ERP_Customer_Id__c": None, "Legal_Entity__c": "PS Consulting Inc.",
                             "OwnerId": "005000000000001AAA", "LastModifiedDate": SF_TS, "IsDeleted": False,
                             "CreatedDate": SF_TS, "SystemModstamp": SF_TS},
    "salesforce__contacts": {"Id": "003000000000001AAA", "AccountId": "001000000000001AAA", "FirstName": "Ada",
                             "LastName": "Byron", "Email": "ada@acme.example", "Title": "CFO", "IsDeleted": False,
                             "CreatedDate": SF_TS, "SystemModstamp": SF_TS},
    "salesforce__opportunities": {"Id": "006000000000001AAA", "AccountId": "001000000000001AAA",
                                  "Name": "Acme - Finance transformation", "StageName": "Closed Won",
                                  "Amount": 250000.0, "CurrencyIsoCode": "USD", "CloseDate": "2026-09-30",
                                  "IsWon": True, "IsClosed": True, "Probability": 100, "Type": "New Business",
                                  "ContractId": "800000000000001AAA", "Billing_Model__c": "Time and Materials",
                                  "Legal_Entity__c": "PS Consulting Inc.", "Tax_Code__c": "US-EXEMPT",
                                  "ERP_Project_Id__c": None, "Activation_Status__c": None, "IsDeleted": False,
                                  "CreatedDate": SF_TS, "SystemModstamp": SF_TS},
    "salesforce__contracts": {"Id": "800000000000001AAA", "AccountId": "001000000000001AAA",
                              "ContractNumber": "00000101", "Status": "Activated", "StartDate": "2026-10-01",
                              "EndDate": "2027-09-30", "ContractTerm": 12, "CurrencyIsoCode": "USD",
                              "Billing_Model__c": "Fixed Fee", "Opportunity__c": "006000000000001AAA",
                              "Legal_Entity__c": "PS Consulting Inc.", "Payment_Terms__c": "Net 30",
                              "Tax_Code__c": "US-EXEMPT", "Contract_Value__c": 250000.0, "IsDeleted": False,
                              "CreatedDate": SF_TS, "SystemModstamp": SF_TS},
    "kantata__projects": {"id": "101", "title": "Acme - Finance transformation", "currency": "USD",
                          "price_in_cents": 25000000, "start_date": "2026-10-05", "due_date": "2027-03-31",
                          "status": {"color": "green", "key": 410, "message": "Active"}, "archived": False,
                          "rate_card_id": "5", "created_at": KT_TS, "updated_at": KT_TS,
                          # the workspace's external reference, folded in from include=external_references
                          "external_reference": {"id": "9", "service_name": "Salesforce",
                                                 "service_model": "Opportunity",
                                                 "service_model_ref": "006000000000001AAA"}},
    "kantata__time_entries": {"id": "9001", "workspace_id": "101", "user_id": "77", "story_id": None,
                              "date_performed": "2026-10-06", "time_in_minutes": 480, "billable": True,
                              "approved": True, "rate_in_cents": 22500, "notes": "Workshop",
                              "created_at": KT_TS, "updated_at": KT_TS,
                              "recent_submission": {"id": "71", "status": "approved",
                                                    "current_resolution_created_at_date": KT_TS}},
    "kantata__expenses": {"id": "501", "workspace_id": "101", "user_id": "77", "date": "2026-10-06",
                          "category": "Travel", "amount_in_cents": 45000, "currency": "USD", "is_billable": True,
                          "notes": "Flight", "created_at": KT_TS, "updated_at": KT_TS,
                          "recent_submission": {"id": "81", "status": "approved",
                                                "current_resolution_created_at_date": KT_TS}},
    "kantata__milestones": {"id": "301", "workspace_id": "101", "title": "Design sign-off",
                            "story_type": "milestone", "state": "completed", "due_date": "2026-11-15",
                            "budget_estimate_in_cents": 5000000, "created_at": KT_TS, "updated_at": KT_TS,
                            "story_state_change": {"id": "91", "state": "completed", "created_at": KT_TS}},
    "kantata__users": {"id": "77", "full_name": "Grace Hopper", "email_address": "grace@psfirm.example",
                       "headline": "Senior Consultant", "disabled": False},
    "kantata__rate_cards": {"id": "805", "created_at": KT_TS, "updated_at": KT_TS,
                            "rate_card": {"id": "5", "currency": "USD", "rate_card_set_title": "NA Standard 2026 USD"},
                            "rate_card_set_version": {"id": "705", "effective_date": "2026-01-01"},
                            "rate_card_roles": [{"id": "1", "rate": 18000, "role_id": "3", "role_name": "Consultant"}]},
    "workday__workers": {"id": "a" * 32, "workerId": "E1001", "descriptor": "Grace Hopper",
                         "primaryWorkEmail": "grace@psfirm.example", "businessTitle": "Senior Consultant",
                         "jobProfile": {"id": "jp1", "descriptor": "Senior Consultant"},
                         "location": {"id": "l1", "descriptor": "New York"},
                         "hireDate": "2021-03-01", "terminationDate": None, "isActive": True},
    "workday__cost_rates": {"Worker_ID": "E1001", "Effective_Date": "2026-01-01", "Cost_Rate": 95.5,
                            "Currency": "USD", "Rate_Type": "Hourly", "Last_Updated": "2026-01-02T09:00:00.000+00:00"},
    "workday__job_history": {"Worker_ID": "E1001", "Effective_Date": "2026-01-01", "Job_Profile": "Senior Consultant",
                             "Business_Title": "Senior Consultant", "Cost_Center": "Consulting East",
                             "Employment_Status": "Active", "FTE": 1.0, "Location": "New York",
                             "Last_Updated": "2026-01-02T09:00:00.000+00:00"},
    "netsuite__subsidiaries": {"id": "1", "name": "PS Consulting Inc.", "country": "US", "currency": "1",
                               "isinactive": "F", "lastmodifieddate": NS_TS},
    "netsuite__currencies": {"id": "1", "symbol": "USD", "name": "US Dollar", "isbasecurrency": "T",
                             "exchangerate": "1", "lastmodifieddate": NS_TS},
    "netsuite__exchange_rates": {"id": "11", "basecurrency": "1", "transactioncurrency": "2",
                                 "exchangerate": "1.27", "effectivedate": "2026-10-01", "lastmodifieddate": NS_TS},
    "netsuite__customers": {"id": "201", "entityid": "CUST-201", "companyname": "Acme Advisory",
                            "externalid": "001000000000001AAA", "subsidiary": "1", "currency": "1",
                            "isinactive": "F", "datecreated": NS_TS, "lastmodifieddate": NS_TS},
    "netsuite__projects": {"id": "301", "entityid": "PRJ-301", "companyname": "Acme - Finance transformation",
                           "externalid": "006000000000001AAA", "parent": "201", "subsidiary": "1", "currency": "1",
                           "entitystatus": "In Progress", "startdate": "2026-10-05", "projectedenddate": "2027-03-31",
                           "datecreated": NS_TS, "lastmodifieddate": NS_TS},
    "netsuite__invoices": {"id": "401", "tranid": "INV-000401", "externalid": None, "type": "CustInvc",
                           "entity": "201", "job": "301", "subsidiary": "1", "currency": "1",
                           "trandate": "2026-10-31", "duedate": "2026-11-30", "status": "Open",
                           "foreigntotal": "18000.00", "memo": "October", "createddate": NS_TS,
                           "lastmodifieddate": NS_TS},
    "netsuite__invoice_lines": {"transaction": "401", "id": "1", "linesequencenumber": "1", "item": "10",
                                "memo": "Consulting", "quantity": "80", "rate": "225.00",
                                "foreignamount": "18000.00", "custcol_ps_line_key": None},
    "hubspot__companies": _hubspot("2000000001", name="Acme Advisory", domain="acme.example", industry="BANKING",
                                   country="Germany", city="Berlin", phone=None, hubspot_owner_id="100000001",
                                   numberofemployees="200", annualrevenue=None),
    "hubspot__contacts": _hubspot("3000000001", "lastmodifieddate", email="ada@acme.example", firstname="Ada",
                                  lastname="Byron", jobtitle="CFO", phone=None, country="Germany",
                                  hubspot_owner_id=None, associatedcompanyid="2000000001"),
    "hubspot__deals": _hubspot("4000000001", dealname="Acme Managed Services", amount="60000.00",
                               closedate=HS_TS, pipeline="default", dealstage="closedwon", dealtype="newbusiness",
                               deal_currency_code="EUR", hubspot_owner_id="100000001", description=None,
                               hs_is_closed="true", hs_is_closed_won="true", hs_deal_stage_probability="1.0",
                               ps_activation_status=None),
    "hubspot__line_items": _hubspot("5000000001", name="Managed Service - Silver", hs_product_id="1000000006",
                                    hs_sku="MS-SILVER", quantity="1", price="5000.00", amount="5000.00",
                                    hs_line_item_currency_code="EUR", recurringbillingfrequency="monthly",
                                    hs_recurring_billing_period="P12M", hs_recurring_billing_start_date="2026-10-15",
                                    hs_recurring_billing_number_of_payments="12"),
    "hubspot__products": _hubspot("1000000006", name="Managed Service - Silver", description="Silver tier",
                                  price="5000.00", hs_sku="MS-SILVER", recurringbillingfrequency="monthly",
                                  hs_recurring_billing_period="P12M"),
    "hubspot__owners": {"id": "100000001", "email": "jo.smith1@psconsulting.com", "type": "PERSON",
                        "firstName": "Jo", "lastName": "Smith", "userId": 7000000, "createdAt": HS_TS,
                        "updatedAt": HS_TS, "archived": False, "teams": []},
}

# One generated record per Certinia entity (sandbox seed 7, scale 0.1), as the Salesforce API answers it.
CERTINIA_VALID = {"certinia__regions": {"Id": "aA18d0000000001CAA",
                       "Name": "Global",
                       "pse__Parent_Region__c": None,
                       "pse__Region_Head__c": None,
                       "pse__Region_ID_Chain__c": None,
                       "pse__Hierarchy_Depth__c": None,
                       "pse__Notes__c": None,
                       "IsDeleted": False,
                       "CreatedDate": "2019-01-07T10:00:00.000+0000",
                       "SystemModstamp": "2019-01-07T10:00:00.000+0000"},
 "certinia__practices": {"Id": "aA28d0000000001CAA",
                         "Name": "Strategy",
                         "pse__Parent_Practice__c": None,
                         "pse__Practice_Head__c": None,
                         "pse__Notes__c": None,
                         "IsDeleted": False,
                         "CreatedDate": "2019-01-07T10:00:00.000+0000",
                         "SystemModstamp": "2019-01-07T10:00:00.000+0000"},
 "certinia__resources": {"Id": "0038d000000000DAAQ",
                         "AccountId": "0018d0000000006AAA",
                         "FirstName": "Linda",
                         "LastName": "Rogers",
                         "Email": "linda.rogers@psconsulting.com",
                         "Title": "Senior Consultant",
                         "CurrencyIsoCode": "USD",
                         "pse__Is_Resource__c": True,
                         "pse__Is_Resource_Active__c": True,
                         "pse__Salesforce_User__c": "0058d00000000GCAAY",
                         "pse__Default_Cost_Rate__c": 93.02,
                         "pse__Resource_Role__c": "Senior Consultant",
                         "pse__Region__c": "aA18d0000000002CAA",
                         "pse__Practice__c": "aA28d0000000002CAA",
                         "pse__Start_Date__c": "2016-06-13",
                         "pse__Last_Date__c": None,
                         "pse__Utilization_Target__c": 75.0,
                         "pse__Exclude_from_Resource_Planner__c": False,
                         "IsDeleted": False,
                         "CreatedDate": "2019-01-07T10:40:24.000+0000",
                         "SystemModstamp": "2019-01-07T10:40:24.000+0000"},
 "certinia__rate_cards": {"Id": "aA88d0000000001CAA",
                          "Name": "RC-00001",
                          "CurrencyIsoCode": "USD",
                          "pse__Role__c": "Partner",
                          "pse__Region__c": "aA18d0000000002CAA",
                          "pse__Practice__c": None,
                          "pse__Account__c": None,
                          "pse__Suggested_Bill_Rate__c": 450.0,
                          "pse__Average_Cost_Rate__c": 200.0,
                          "pse__Start_Date__c": "2024-01-01",
                          "pse__End_Date__c": "2024-12-31",
                          "pse__Cascading_Role__c": False,
                          "IsDeleted": False,
                          "CreatedDate": "2023-12-01T10:00:00.000+0000",
                          "SystemModstamp": "2023-12-01T10:00:00.000+0000"},
 "certinia__projects": {"Id": "aA38d0000000002CAA",
                        "Name": "Bramble Telecom - Finance Transformation",
                        "OwnerId": None,
                        "CurrencyIsoCode": "USD",
                        "pse__Account__c": "0018d0000000001AAA",
                        "pse__Opportunity__c": "0068d0000000004AAA",
                        "pse__Region__c": "aA18d0000000002CAA",
                        "pse__Practice__c": "aA28d0000000002CAA",
                        "pse__Project_Manager__c": "0038d000000000DAAQ",
                        "pse__Parent_Project__c": None,
                        "pse__Start_Date__c": "2025-05-26",
                        "pse__End_Date__c": "2025-08-25",
                        "pse__Stage__c": "Completed",
                        "pse__Project_Status__c": "Green",
                        "pse__Billing_Type__c": "Time and Materials",
                        "pse__Project_Type__c": "Customer Project",
                        "pse__Is_Active__c": False,
                        "pse__Is_Billable__c": True,
                        "pse__Closed_for_Time_Entry__c": True,
                        "pse__Closed_for_Expense_Entry__c": True,
                        "pse__Allow_Timecards_Without_Assignment__c": False,
                        "pse__Bookings__c": 771000.0,
                        "pse__Billings__c": None,
                        "pse__Planned_Hours__c": None,
                        "pse__Description__c": "Bramble Telecom - Finance Transformation",
                        "IsDeleted": False,
                        "CreatedDate": "2025-05-20T15:09:27.000+0000",
                        "SystemModstamp": "2025-08-26T17:00:00.000+0000"},
 "certinia__milestones": {"Id": "aA48d0000000001CAA",
                          "Name": "Discovery",
                          "CurrencyIsoCode": "USD",
                          "pse__Project__c": "aA38d0000000001CAA",
                          "pse__Target_Date__c": "2025-07-01",
                          "pse__Actual_Date__c": "2025-07-06",
                          "pse__Status__c": "Approved",
                          "pse__Milestone_Amount__c": 102800.0,
                          "pse__Approved__c": True,
                          "pse__Approved_for_Billing__c": True,
                          "pse__Include_In_Financials__c": True,
                          "pse__Billed__c": False,
                          "pse__Closed_for_Time_Entry__c": True,
                          "pse__Closed_for_Expense_Entry__c": True,
                          "pse__Planned_Hours__c": None,
                          "pse__Description__c": None,
                          "IsDeleted": False,
                          "CreatedDate": "2025-05-15T10:41:06.000+0000",
                          "SystemModstamp": "2025-07-06T18:17:47.000+0000"},
 "certinia__assignments": {"Id": "aA58d0000000001CAA",
                           "Name": "Barbara Phillips - Bramble Telecom - Finance Transformation",
                           "CurrencyIsoCode": "USD",
                           "pse__Project__c": "aA38d0000000001CAA",
                           "pse__Resource__c": "0038d000000000AAAQ",
                           "pse__Milestone__c": None,
                           "pse__Role__c": "Senior Consultant",
                           "pse__Status__c": "Closed",
                           "pse__Bill_Rate__c": 220.0,
                           "pse__Cost_Rate_Amount__c": 121.14,
                           "pse__Is_Billable__c": True,
                           "pse__Start_Date__c": "2025-05-07",
                           "pse__End_Date__c": "2026-02-06",
                           "pse__Planned_Hours__c": None,
                           "pse__Closed_for_Time_Entry__c": True,
                           "pse__Closed_for_Expense_Entry__c": True,
                           "IsDeleted": False,
                           "CreatedDate": "2025-05-15T10:41:06.000+0000",
                           "SystemModstamp": "2025-05-15T10:41:06.000+0000"},
 "certinia__timecards": {"Id": "aA68d0000000001CAA",
                         "Name": "TC-0000001",
                         "CurrencyIsoCode": "USD",
                         "pse__Resource__c": "0038d000000000AAAQ",
                         "pse__Project__c": "aA38d0000000001CAA",
                         "pse__Assignment__c": "aA58d0000000001CAA",
                         "pse__Milestone__c": None,
                         "pse__Start_Date__c": "2025-05-05",
                         "pse__End_Date__c": "2025-05-11",
                         "pse__Monday_Hours__c": 0.0,
                         "pse__Tuesday_Hours__c": 0.0,
                         "pse__Wednesday_Hours__c": 7.75,
                         "pse__Thursday_Hours__c": 4.0,
                         "pse__Friday_Hours__c": 0.0,
                         "pse__Saturday_Hours__c": 0.0,
                         "pse__Sunday_Hours__c": 0.0,
                         "pse__Total_Hours__c": 11.75,
                         "pse__Status__c": "Approved",
                         "pse__Billable__c": True,
                         "pse__Submitted__c": True,
                         "pse__Approved__c": True,
                         "pse__Include_In_Financials__c": True,
                         "pse__Billed__c": False,
                         "pse__Bill_Rate__c": 220.0,
                         "pse__Cost_Rate_Amount__c": 121.14,
                         "pse__Total_Billable_Amount__c": 2585.0,
                         "pse__Approver__c": None,
                         "pse__Timecard_Notes__c": "Status meeting",
                         "pse__Monday_Notes__c": None,
                         "pse__Tuesday_Notes__c": None,
                         "pse__Wednesday_Notes__c": None,
                         "pse__Thursday_Notes__c": None,
                         "pse__Friday_Notes__c": None,
                         "pse__Saturday_Notes__c": None,
                         "pse__Sunday_Notes__c": None,
                         "IsDeleted": False,
                         "CreatedDate": "2025-05-07T19:07:50.000+0000",
                         "SystemModstamp": "2025-05-15T13:14:01.000+0000"},
 "certinia__expenses": {"Id": "aA78d0000000001CAA",
                        "Name": "EX-0000001",
                        "CurrencyIsoCode": "USD",
                        "pse__Resource__c": "0038d000000000AAAQ",
                        "pse__Project__c": "aA38d0000000001CAA",
                        "pse__Assignment__c": "aA58d0000000001CAA",
                        "pse__Milestone__c": None,
                        "pse__Expense_Date__c": "2025-06-05",
                        "pse__Type__c": "Taxi",
                        "pse__Amount__c": 61.64,
                        "pse__Status__c": "Approved",
                        "pse__Billable__c": True,
                        "pse__Submitted__c": True,
                        "pse__Approved__c": True,
                        "pse__Include_In_Financials__c": True,
                        "pse__Billed__c": False,
                        "pse__Non_Reimbursible__c": False,
                        "pse__Description__c": "Taxi to client office",
                        "IsDeleted": False,
                        "CreatedDate": "2025-06-05T10:52:38.000+0000",
                        "SystemModstamp": "2025-06-13T11:15:53.000+0000"}}
VALID.update(CERTINIA_VALID)

# Dynamics 365 F&O rows as OData answers them: an etag, dates at noon UTC, decimals as numbers.
D365_DAY = "2026-10-01T12:00:00Z"
D365_VALID = {
    "d365__legal_entities": {"@odata.etag": 'W/"1"', "LegalEntityId": "usmf", "Name": "Contoso Consulting USA",
                             "AddressCountryRegionIsoCode": "US"},
    "d365__ledgers": {"@odata.etag": 'W/"1"', "LegalEntityId": "usmf", "AccountingCurrency": "USD",
                      "ReportingCurrency": "USD"},
    "d365__currencies": {"@odata.etag": 'W/"1"', "CurrencyCode": "USD", "Name": "US Dollar",
                         "ReferenceCurrencyForTriangulation": "Yes"},
    "d365__exchange_rates": {"@odata.etag": 'W/"1"', "RateTypeName": "Default", "FromCurrency": "EUR",
                             "ToCurrency": "USD", "StartDate": D365_DAY, "EndDate": "2154-12-31T12:00:00Z",
                             "Rate": 108.25, "ConversionFactor": "Hundred"},
    "d365__customers": {"@odata.etag": 'W/"1"', "dataAreaId": "usmf", "CustomerAccount": "US-00001",
                        "OrganizationName": "Acme Advisory", "CustomerGroupId": "PSCUST", "SalesCurrencyCode": "USD",
                        "InvoiceAccount": "US-00001", "PaymentTerms": "Net30", "PsCrmAccountId": "0018d00000A1"},
    "d365__project_contracts": {"@odata.etag": 'W/"1"', "dataAreaId": "usmf", "ProjectContractID": "PC-000001",
                                "Name": "Acme rollout", "SalesCurrency": "USD", "ContractDate": "2026-10-01T08:30:00Z"},
    "d365__projects": {"@odata.etag": 'W/"1"', "dataAreaId": "usmf", "ProjectID": "PRJ-000001",
                       "ProjectName": "Acme rollout", "CustomerAccount": "US-00001", "ProjectContractID": "PC-000001",
                       "ProjectType": "TimeMaterial", "ProjectStage": "InProcess", "ProjectedStartDate": D365_DAY,
                       "ProjectedEndDate": None, "PsCrmOpportunityId": "0068d00000B2"},
    "d365__free_text_invoices": {"@odata.etag": 'W/"1"', "dataAreaId": "usmf", "InvoiceIdentifier": 5637144577,
                                 "InvoiceId": "FTI-000001", "CustomerAccount": "US-00001", "CurrencyCode": "USD",
                                 "InvoiceDate": D365_DAY, "DueDate": D365_DAY, "IsPosted": "Yes",
                                 "ExternalInvoiceId": "psp:inv:1:2026-09"},
    "d365__free_text_invoice_lines": {"@odata.etag": 'W/"1"', "dataAreaId": "usmf", "ParentRecId": 5637144577,
                                      "LineNumber": 1, "Description": "Consulting",
                                      "InvoiceText": "psp:inl:time:1", "ProjectId": "PRJ-000001",
                                      "TransactionCurrencyAmount": 18000.5},
    "d365__invoices": {"@odata.etag": 'W/"1"', "dataAreaId": "usmf", "InvoiceNumber": "FTI-000001",
                       "InvoiceCustomerAccountNumber": "US-00001", "CurrencyCode": "USD", "InvoiceDate": D365_DAY,
                       "TotalInvoiceAmount": 18000.5, "TotalTaxAmount": 0},
    "d365__invoice_lines": {"@odata.etag": 'W/"1"', "dataAreaId": "usmf", "InvoiceNumber": "FTI-000001",
                            "LineNumber": 1, "ProductDescription": "Consulting", "ProjectId": "PRJ-000001",
                            "InvoicedQuantity": 80, "SalesPrice": 225.0063, "LineAmount": 18000.5,
                            "CurrencyCode": "USD", "InvoiceDate": D365_DAY},
}
VALID.update(D365_VALID)

INVALID_VALUES = {"float64": "not-a-number", "datetime64[ns, UTC]": "yesterday-ish", "datetime64[ns]": "31/31/2026",
                  "boolean": "maybe"}


def test_every_contract_has_a_valid_example() -> None:
    assert set(VALID) == set(CONTRACTS_BY_KEY)


@pytest.mark.parametrize("contract", EVERY_CONTRACT, ids=lambda c: c.key)
def test_valid_record_passes_and_keeps_its_values(contract: EntityContract) -> None:
    batch = validate_records(contract, [VALID[contract.key]])
    assert batch.rejects == []
    assert len(batch.valid) == 1
    assert set(batch.valid.columns) == set(contract.columns)


def _source_key(contract: EntityContract, column: str) -> tuple[str, ...]:
    """Find the wire-shape path of a flattened column in the valid example."""
    record = VALID[contract.key]
    for key, value in record.items():
        if key.lower() == column:
            return (key,)
        if isinstance(value, dict):
            for inner in value:
                # HubSpot's properties are lifted to the top level (contracts.hubspot.flatten_object).
                if f"{key.lower()}_{inner.lower()}" == column or (key == "properties" and inner == column):
                    return (key, inner)
    raise KeyError(column)


def _with(contract: EntityContract, column: str, value: object) -> dict:
    record = copy.deepcopy(VALID[contract.key])
    path = _source_key(contract, column)
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return record


def _invalid_cases() -> list[tuple[EntityContract, str, object, str]]:
    cases = []
    for contract in EVERY_CONTRACT:
        for name, column in contract.schema.columns.items():
            dtype = str(column.dtype)
            if not column.nullable:
                cases.append((contract, name, None, "not_nullable"))
            if dtype in INVALID_VALUES:
                cases.append((contract, name, INVALID_VALUES[dtype], "not a valid"))
            for check in column.checks:
                stats = check.statistics or {}
                if check.name == "isin":
                    cases.append((contract, name, "NOT-AN-ALLOWED-VALUE", "isin"))
                elif check.name == "greater_than_or_equal_to":
                    cases.append((contract, name, stats["min_value"] - 1, "greater_than_or_equal_to"))
                elif check.name == "less_than_or_equal_to":
                    cases.append((contract, name, stats["max_value"] + 1, "less_than_or_equal_to"))
                elif check.name == "str_matches":
                    cases.append((contract, name, "no match at all!", "str_matches"))
                elif check.name == "non_empty_list":
                    cases.append((contract, name, [], "non_empty_list"))
    return cases


@pytest.mark.parametrize(
    ("contract", "column", "value", "rule"),
    _invalid_cases(),
    ids=lambda v: v.key if isinstance(v, EntityContract) else str(v)[:24],
)
def test_invalid_record_is_rejected_naming_column_and_rule(contract, column, value, rule) -> None:
    batch = validate_records(contract, [VALID[contract.key], _with(contract, column, value)])
    assert len(batch.valid) == 1, "the valid row still loads"
    assert len(batch.rejects) == 1
    reason = batch.rejects[0].reason
    assert f"{column}:" in reason and rule in reason, reason


def test_added_field_is_reported_as_drift_not_rejected() -> None:
    contract = CONTRACTS_BY_KEY["kantata__time_entries"]
    batch = validate_records(contract, [{**VALID[contract.key], "overtime_flag": True}])
    assert batch.rejects == [] and batch.unexpected_columns == {"overtime_flag"}


def test_flatten_drops_transport_envelopes_and_joins_nested_keys() -> None:
    flat = flatten_record({"attributes": {"type": "Account"}, "Id": "1", "jobProfile": {"descriptor": "X"},
                           "links": []})
    assert flat == {"id": "1", "jobprofile_descriptor": "X"}
