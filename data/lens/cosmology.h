// Flat Lambda-CDM distances and lensing critical density (lensing_physics.md section 2), and the
// Einstein-radius formula DeepLenseSim used (section 8), which the `model1` preset imitates.
#pragma once

namespace halo::data::lens {

struct Cosmology {
  double H0 = 70.0;     // km/s/Mpc
  double Om0 = 0.3;     // matter; flat, so Lambda = 1 - Om0 (radiation neglected, as astropy Tcmb0=0)
  double E(double z) const;                     // H(z)/H0
  double comoving_distance(double z) const;     // Mpc
  double angular_diameter_distance(double z1, double z2) const;  // D(z1, z2), Mpc
  double luminosity_distance(double z) const;   // Mpc
};

// Critical density in M_sun / arcsec^2 for lenses at z_l and sources at z_s.
double sigma_crit_arcsec2(const Cosmology& c, double z_l, double z_s);
// Einstein radius (arcsec) of a point mass M (M_sun): M = pi theta_E^2 Sigma_cr,arcsec.
double point_mass_theta_e(const Cosmology& c, double mass, double z_l, double z_s);
// DeepLenseSim's formula: sqrt(4 G M / c^2 * D_LS / (D_L D_S)) with *luminosity* distances and
// D_LS = D_S - D_L (1.2815" for 1e12 M_sun at z 0.5 / 1.0). Used to imitate their images.
double deeplense_theta_e(const Cosmology& c, double mass, double z_l, double z_s);

}  // namespace halo::data::lens
