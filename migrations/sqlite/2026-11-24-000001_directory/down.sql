DROP TABLE practitioners;
DROP TABLE organizations;
