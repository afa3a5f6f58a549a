DROP TABLE backup_info_exchanges;
DROP TABLE backup_registrations;
